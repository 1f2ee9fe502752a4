"""Compound scaling's math (scaling/): the coefficient grid, refused coefficients, timm's rounding."""

import itertools
import math

import pytest
import timm
import torch

from scaling import EFFICIENTNET_COEFFICIENTS, Coefficients, grid_points, scale, scale_genotype, tolerance_needed
from search_spaces import build_model, seed_architecture


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _brute_force(step: float, tolerance: float, max_value: float) -> set[tuple[float, float, float]]:
    """Every triple of the grid, checked one by one (n^3), as the definition reads."""
    values = [1.0 + i * step for i in range(int(round((max_value - 1.0) / step)) + 1)]
    return {(round(a, 9), round(b, 9), round(g, 9)) for a, b, g in itertools.product(values, repeat=3)
            if abs(a * b * b * g * g - 2.0) <= tolerance + 1e-9}


@pytest.mark.parametrize("step, tolerance, max_value", [
    (0.05, 0.05, 2.0), (0.1, 0.05, 2.0), (0.05, 0.1, 2.0), (0.1, 0.01, 1.5), (0.025, 0.02, 1.6), (0.5, 0.25, 2.0),
])
def test_grid_points_satisfy_the_constraint_and_none_is_missing(step, tolerance, max_value):
    points = grid_points(step, tolerance, max_value)
    for p in points:
        assert 1.0 <= min(p.alpha, p.beta, p.gamma) and max(p.alpha, p.beta, p.gamma) <= max_value + 1e-9
        assert abs(p.alpha * p.beta**2 * p.gamma**2 - 2.0) <= tolerance + 1e-9
    found = {(round(p.alpha, 9), round(p.beta, 9), round(p.gamma, 9)) for p in points}
    assert len(found) == len(points)  # no duplicates
    assert found == _brute_force(step, tolerance, max_value)


def test_grid_holds_the_papers_triple_and_names_a_wider_tolerance():
    assert Coefficients(1.2, 1.1, 1.15) in grid_points(0.05, 0.1, 2.0)  # 1.2 * 1.1^2 * 1.15^2 = 1.92
    assert Coefficients(1.2, 1.1, 1.15) not in grid_points(0.05, 0.05, 2.0)
    assert grid_points(0.5, 0.1, 1.5) == [] and tolerance_needed(0.5, 1.5) == 0.25
    assert len(grid_points(0.5, 0.25, 1.5)) == 2 and not grid_points(0.5, 0.249, 1.5)


@pytest.mark.parametrize("bad", [dict(alpha=0.99, beta=1.0, gamma=1.0), dict(alpha=1.0, beta=0.5, gamma=1.0),
                                 dict(alpha=1.0, beta=1.0, gamma=float("nan"))])
def test_coefficients_below_one_are_refused(bad):
    with pytest.raises(ValueError, match="must be >= 1"):
        Coefficients(**bad)
    with pytest.raises(ValueError, match="phi must be >= 0"):
        EFFICIENTNET_COEFFICIENTS.at(-1, 224)


@pytest.mark.parametrize("phi, width, depth", [(1, 1.0, 1.1), (2, 1.1, 1.2), (3, 1.2, 1.4), (4, 1.4, 1.8)])
def test_lite_networks_keep_stem_head_and_end_stages_as_timm_does(phi, width, depth):
    scaled = scale_genotype(seed_architecture("efficientnet_lite0"), depth=depth, width=width)
    with torch.device("meta"):
        assert _params(build_model(scaled)) == _params(timm.create_model(f"efficientnet_lite{phi}", pretrained=False))
    assert (scaled.stem_size, scaled.num_features) == (32, 1280)


def test_compound_rounding_follows_efficientnet():
    b0 = seed_architecture("efficientnet_b0")
    assert scale(b0, EFFICIENTNET_COEFFICIENTS.at(0, 224)) == b0  # phi = 0 is the base
    for phi in range(1, 5):
        member = EFFICIENTNET_COEFFICIENTS.at(phi, 224)
        scaled = scale(b0, member)
        assert member.resolution % 8 == 0 and abs(member.resolution - 224 * 1.15**phi) <= 4
        for old, new in zip(itertools.chain(*b0.stages), itertools.chain(*scaled.stages), strict=True):
            assert new.repeats == math.ceil(old.repeats * member.depth - 1e-9)
            assert new.out_chs % 8 == 0 and new.out_chs >= 0.9 * old.out_chs * member.width
            assert abs(new.out_chs - old.out_chs * member.width) <= 8
        assert scaled.num_features == 8 * round(1280 * member.width / 8)


