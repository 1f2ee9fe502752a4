"""Compound scaling of a found network (EfficientNet): the coefficient grid, scaled genotypes and
the released families. Asks ``search_spaces`` for timm's rounding; knows nothing of ``nas``."""

from scaling.compound import EFFICIENTNET_COEFFICIENTS, FLOPS_TARGET, Coefficients, Member, scale, scale_genotype
from scaling.families import FAMILIES, REFERENCE_RESOLUTION, released_family
from scaling.grid import grid_points, grid_values, tolerance_needed

__all__ = [
    "EFFICIENTNET_COEFFICIENTS", "FAMILIES", "FLOPS_TARGET", "REFERENCE_RESOLUTION", "Coefficients", "Member",
    "grid_points", "grid_values", "released_family", "scale", "scale_genotype", "tolerance_needed",
]
