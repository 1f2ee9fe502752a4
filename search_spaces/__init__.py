"""Architectures as data: block strings, genotypes, search spaces and the paper's networks.

The names that need timm (and so torch) load on first use (PEP 562): listing spaces and reading
genotypes stays free of the seconds torch takes to import.
"""

from __future__ import annotations

import importlib
from typing import Any

from search_spaces.blocks import Block
from search_spaces.genotype import Genotype
from search_spaces.seeds import PAPER_NAMES, SEED_NAMES, WIDTH_VARIANTS, seed_architecture
from search_spaces.spaces import SPACES, FactorizedSpace, get_space

_NEEDS_TIMM = ("build_model", "network_parts", "round_resolution", "round_width", "scale_repeats")

__all__ = ["Block", "FactorizedSpace", "Genotype", "PAPER_NAMES", "SEED_NAMES", "SPACES", "WIDTH_VARIANTS", "get_space", "seed_architecture", *_NEEDS_TIMM]


def __getattr__(name: str) -> Any:
    if name not in _NEEDS_TIMM:
        raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")
    value = getattr(importlib.import_module("search_spaces.timm_adapter"), name)
    globals()[name] = value
    return value
