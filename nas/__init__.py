"""nas: hardware-aware neural architecture search. The CLI is a thin layer over this API.

Names load on first use (PEP 562), so ``import nas`` and every ``nas`` command start without
importing torch, timm or Optuna until they need them.
"""

from __future__ import annotations

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

__all__ = ["DataError", "NasError", "StudyError", "UsageError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
