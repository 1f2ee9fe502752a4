"""The grid EfficientNet searched at phi = 1: every (alpha, beta, gamma) >= 1 on a step grid with
alpha * beta^2 * gamma^2 within a tolerance of 2."""

from __future__ import annotations

import math

from scaling.compound import FLOPS_TARGET, Coefficients

EPSILON = 1e-9  # float slack, so a product exactly at the tolerance's edge is on the grid
MAX_VALUES = 201  # candidates per coefficient (step 0.005 up to 2.0): each feasible point is a training run


def grid_values(step: float, max_value: float) -> list[float]:
    """1, 1 + step, ... up to ``max_value``, rounded so that labels and lookups are exact."""
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step:g}")
    if not max_value >= 1.0:
        raise ValueError(f"max must be >= 1, got {max_value:g}")
    count = math.floor((max_value - 1.0) / step + EPSILON) + 1
    if count > MAX_VALUES:
        raise ValueError(f"step {step:g} up to {max_value:g} gives {count} values per coefficient; "
                         f"at most {MAX_VALUES}: use a larger step")
    decimals = max(0, -math.floor(math.log10(step))) + 3
    return [round(1.0 + i * step, decimals) for i in range(count)]


def _deviation(alpha: float, beta: float, gamma: float) -> float:
    return abs(alpha * beta**2 * gamma**2 - FLOPS_TARGET)


def grid_points(step: float, tolerance: float, max_value: float) -> list[Coefficients]:
    """Every feasible triple, ordered by alpha, beta, gamma.

    For each (alpha, beta) only the gammas whose square lies in [(2 - tol), (2 + tol)] / (alpha beta^2)
    can qualify, so this looks at O(n^2) candidates instead of n^3.
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance:g}")
    values = grid_values(step, max_value)
    points = []
    for alpha in values:
        for beta in values:
            base = alpha * beta**2
            low = math.sqrt(max(0.0, FLOPS_TARGET - tolerance) / base)
            high = math.sqrt((FLOPS_TARGET + tolerance) / base)
            first = max(0, math.floor((low - 1.0) / step) - 1)
            last = min(len(values) - 1, math.ceil((high - 1.0) / step) + 1)
            points.extend(Coefficients(alpha, beta, gamma) for gamma in values[first:last + 1]
                          if _deviation(alpha, beta, gamma) <= tolerance + EPSILON)
    return points


def tolerance_needed(step: float, max_value: float) -> float:
    """The smallest tolerance (to 3 decimals, rounded up) that puts a point on the grid."""
    values = grid_values(step, max_value)
    best = min(_deviation(a, b, g) for a in values for b in values
               for g in _gammas_near(values, a * b**2, step))
    return math.ceil(best * 1000 - EPSILON) / 1000


def _gammas_near(values: list[float], base: float, step: float) -> list[float]:
    """The grid gammas either side of the one that makes the product exactly 2."""
    index = math.floor((math.sqrt(FLOPS_TARGET / base) - 1.0) / step)
    return [values[min(max(i, 0), len(values) - 1)] for i in (index, index + 1)]
