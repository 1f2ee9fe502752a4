"""A refinement's latencies on a device whose layer times are known, with a slow round in every three."""

from __future__ import annotations

import pytest

from known_latency import KnownDevice, layer_ms
from nas.latency import LatencySettings, network_layers
from nas.refine.latency import SIDE_BY_SIDE_ROUNDS, SideBySideLatency
from nas.refine.proposals import narrower_widths, proposals, shrink
from search_spaces import Genotype

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r2_k3_s2_e3_c16"], ["ir_r2_k5_s2_e3_c24_se0.25"]],
                              stem_size=8, num_features=64)
SETTINGS = LatencySettings(resolution=64)
START_MS = 10.0


@pytest.fixture()
def table() -> SideBySideLatency:
    return SideBySideLatency(SETTINGS, START_MS, timer=KnownDevice())


def _changed(parent: Genotype, child: Genotype) -> list[tuple]:
    return [(a, b) for a, b in zip(network_layers(parent, 64), network_layers(child, 64), strict=True) if a.key != b.key]


def test_the_start_is_priced_at_its_measured_latency(table):
    assert table.latency(TINY).latency_ms == START_MS and table.device["resolution"] == 64


@pytest.mark.parametrize("kind", ["expand", "width"])
def test_a_proposal_saves_what_its_changed_layers_save_side_by_side(table, kind):
    """Each changed layer is timed beside the parent's in several rounds: the slow third round of
    the device never reaches the saving, and a pair already timed is not timed again."""
    proposal = next(p for p in proposals(TINY) if p.kind == kind)
    child = shrink(TINY, proposal, narrower_widths(TINY, proposal)[0])
    changed = _changed(TINY, child)
    assert changed
    expected = sum(layer_ms(a.key) - layer_ms(b.key) for a, b in changed)
    assert table.saved_ms(TINY, child) == pytest.approx(expected, rel=1e-12)
    rounds = table.timer.layer_rounds
    assert all(rounds[layer.key] == SIDE_BY_SIDE_ROUNDS for pair in changed for layer in pair)
    timed = sum(rounds.values())
    assert table.saved_ms(TINY, child) == pytest.approx(expected, rel=1e-12) and sum(rounds.values()) == timed


def test_a_width_that_meets_the_goal_is_chosen_or_none(table):
    proposal = next(p for p in proposals(TINY) if p.kind == "expand")
    widths = narrower_widths(TINY, proposal)
    latency = {w: START_MS - table.saved_ms(TINY, shrink(TINY, proposal, w)) for w in widths}
    width, genotype, found_ms = table.largest_width(TINY, START_MS, proposal, latency[widths[0]])
    assert found_ms == latency[width] <= latency[widths[0]] and genotype == shrink(TINY, proposal, width)
    assert table.largest_width(TINY, START_MS, proposal, latency[widths[0]] - 1.0) is None
