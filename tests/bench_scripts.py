"""The scripts of bench/ as modules for their tests."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench"


def load(name: str):
    """``bench/NAME.py`` as a module, without leaving bench/ on sys.path (its scaling.py would
    shadow the scaling package)."""
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
    return module
