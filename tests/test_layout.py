"""The shape of the code: imports flow one way (nas -> dashboards -> storage, nas -> scaling ->
search_spaces), no import cycle inside nas, no module over 400 lines, no private name of another
module or library imported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nas", "search_spaces", "scaling", "storage", "dashboards")
MAX_LINES = 400
# private names used because the library has no public one, each with why
NO_PUBLIC_API = {
    "from timm.models._efficientnet_builder import ...": "timm exports no arch_def decoder or its rounding",
    "from timm.models._efficientnet_builder import _scale_stage_depth": "EfficientNet's depth rounding, not exported",
    "from timm.models._efficientnet_blocks import ...": "the SE module timm's MBConv blocks use, not exported",
    "from optuna_dashboard import _note": "optuna-dashboard has no hook for its note lookup (dashboards/attr_index.py)",
    "from optuna_dashboard import _serializer": "... nor for its attribute serializer",
    "from typer._click.exceptions import ...": "typer vendors click and exports no usage error to print in one line",
}


def _sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_import_contracts_hold():
    """import-linter's contracts in pyproject.toml: layers, forbidden imports, acyclic nas."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"{path.relative_to(ROOT)}: split it along its seams"


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
            if node.module and any(part.startswith("_") for part in node.module.split(".")):
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if any(p.startswith("_") for p in a.name.split("."))]
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_imported(path):
    wrong = [name for name in _private_imports(path) if name not in NO_PUBLIC_API]
    assert not wrong, f"{path.relative_to(ROOT)}: {wrong}"
