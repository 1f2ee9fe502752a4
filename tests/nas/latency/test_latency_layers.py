"""A network's layers, computed without building it, are exactly the modules timm builds."""

import zlib

import pytest
import torch

from nas.latency import Calibration, Features, LatencyPredictor, MissingEntries, network_layers, random_networks, space_layers
from search_spaces import SEED_NAMES, build_model, get_space, network_parts, seed_architecture


@pytest.mark.parametrize("name", SEED_NAMES)
def test_layers_are_exactly_the_network_timm_builds(name):
    """Each computed layer has the input shape it meets in the real network, and the module a
    table would time is the same module (same structure). 112 px: 7 -> 4 at the last stride."""
    _check_layers(seed_architecture(name), 112)


def test_layers_of_random_networks_at_odd_resolutions():
    for genotype in random_networks(get_space("mbconv"), 3, seed=1) + random_networks(get_space("tiny"), 3, seed=1):
        _check_layers(genotype, 97)


def _check_layers(genotype, resolution):
    stem, blocks, head = network_parts(build_model(genotype).eval())
    layers = network_layers(genotype, resolution)
    assert [layer.kind for layer in layers] == ["stem"] + ["block"] * len(blocks) + ["head"]
    x = torch.randn(1, 3, resolution, resolution)
    with torch.no_grad():
        for layer, part in zip(layers, [stem, *blocks, head], strict=True):
            assert tuple(x.shape) == layer.input_shape(), layer.key
            assert str(layer.module()) == str(part), layer.key
            x = part(x)


def test_the_space_enumeration_covers_every_sampled_network():
    layers = space_layers(get_space("tiny"), 64)
    for genotype in random_networks(get_space("tiny"), 50, seed=3):
        assert {layer.key for layer in network_layers(genotype, 64)} <= set(layers)


def test_random_networks_are_distinct_reproducible_and_exclude_what_they_are_told():
    space = get_space("tiny")
    first = random_networks(space, 10, seed=7)
    assert [g.key for g in first] == [g.key for g in random_networks(space, 10, seed=7)]
    assert len({g.key for g in first}) == 10
    assert not {g.key for g in random_networks(space, 10, seed=7, exclude=[g.key for g in first])} & {g.key for g in first}


def _table(space: str, resolution: int) -> dict[str, tuple[float, int]]:
    return {key: (0.01 + zlib.crc32(key.encode()) % 997 / 1e4, zlib.crc32(key.encode()) % 5000)
            for key in space_layers(get_space(space), resolution)}


@pytest.mark.parametrize(("space", "resolution"), [("tiny", 64), ("mbconv", 224)])
def test_cached_block_sums_are_the_plain_sum_over_layers(space, resolution):
    """The predictor sums each block string once and reuses it; the result is the flat sum."""
    entries = _table(space, resolution)
    predictor = LatencyPredictor(1, {"resolution": resolution}, entries, Calibration(), space)
    for genotype in random_networks(get_space(space), 30, seed=11) * 2:  # the second time from the cache
        flat = Features.of(network_layers(genotype, resolution), entries)
        assert predictor.features(genotype) == pytest.approx(flat, rel=1e-12)
        assert predictor(genotype) == pytest.approx(flat.sum_ms, rel=1e-12)  # no calibration: the plain sum


def test_a_network_outside_the_table_names_the_missing_layers():
    predictor = LatencyPredictor(1, {"resolution": 64}, _table("tiny", 64), Calibration(), "tiny")
    seed = seed_architecture("mobilenetv3_small_100")
    missing = predictor.missing(seed)
    assert missing and all(layer.key not in predictor.entries for layer in missing)
    assert len({layer.key for layer in missing}) == len(missing)
    with pytest.raises(MissingEntries, match=f"lacks {len(missing)} layer"):
        predictor(seed)
