"""Architectures as data: block strings, genotypes, search spaces and the paper's networks."""

from search_spaces.blocks import Block
from search_spaces.genotype import Genotype
from search_spaces.seeds import SEED_NAMES, seed_architecture
from search_spaces.spaces import SPACES, FactorizedSpace, get_space
from search_spaces.timm_adapter import build_model, network_parts, round_resolution, round_width, scale_repeats

__all__ = [
    "Block", "FactorizedSpace", "Genotype", "SEED_NAMES", "SPACES", "build_model", "get_space", "network_parts",
    "round_resolution", "round_width", "scale_repeats", "seed_architecture",
]
