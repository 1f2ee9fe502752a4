"""Compound scaling as a tool: the coefficient grid as a resumable study, scaled families as
architecture files and ``scale`` runs, one scaled network on its own (the math is ``scaling/``)."""

from nas.scale.families import FamilyConfig, FamilyRow, build_family, coefficients_from, parse_phis, show_scaled
from nas.scale.grid import GridConfig, GridPoint, GridResult, plan_grid, run_grid

__all__ = [
    "FamilyConfig", "FamilyRow", "GridConfig", "GridPoint", "GridResult", "build_family", "coefficients_from", "parse_phis",
    "plan_grid", "run_grid", "show_scaled",
]
