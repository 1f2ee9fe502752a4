"""nas: hardware-aware neural architecture search. The CLI is a thin layer over this API.

Names load on first use (PEP 562), so ``import nas`` and every ``nas`` command start without
importing torch, timm or Optuna until they need them.

Importing them creates hundreds of thousands of objects that all survive, and CPython's collector,
which looks at its youngest objects every 700 new ones, walks them over and over meanwhile. With
that first threshold at 10,000, a nas process (a command, each worker, the measuring child: every
one starts by importing this package) imports them in 0.92x the time (7.5 s instead of 8.2 s on a
2-core machine, ``bench/startup.py``). Only CPython's default is raised; a threshold set before is kept.
"""

from __future__ import annotations

import gc
import importlib
from typing import Any

from nas.errors import DataError, NasError, StudyError, UsageError

_LAZY = {
    "SearchConfig": "nas.config", "LatencySettings": "nas.latency", "measure_latency": "nas.latency",
    "LatencyPredictor": "nas.latency", "build_table": "nas.latency", "load_predictor": "nas.latency",
    "validate_table": "nas.latency", "ProxySettings": "nas.proxy", "Reward": "nas.reward",
    "SearchResult": "nas.search", "run_search": "nas.search", "TrialRunner": "nas.runner",
    "register_architecture": "nas.timm_models", "register_study": "nas.timm_models",  # registers timm's `nas_genotype`
}

CPYTHON_YOUNG_THRESHOLD = 700
YOUNG_THRESHOLD = 10_000
if gc.get_threshold()[0] == CPYTHON_YOUNG_THRESHOLD:
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])

__all__ = ["DataError", "NasError", "StudyError", "UsageError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
