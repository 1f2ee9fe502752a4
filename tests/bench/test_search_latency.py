"""bench/search_latency.py: each network timed three ways, each searched trial against a fresh process."""

import pytest
from bench_scripts import load
from rich.console import Console

_latency = load("search_latency")
QUIET = Console(quiet=True)


@pytest.mark.slow
def test_each_network_is_timed_where_it_trained_in_the_child_and_in_a_fresh_process():
    figures = _latency.mechanism("tiny", 2, QUIET)
    assert len(figures["networks"]) == 2
    assert all(set(row) == {"trained", "child", "fresh"} for row in figures["networks"])
    for where in ("trained", "child"):
        ratio = figures[f"{where}_over_fresh"]
        assert ratio["min"] <= ratio["median"] <= ratio["max"]


@pytest.mark.slow
def test_every_completed_trial_of_the_search_is_timed_again_in_a_fresh_process():
    figures = _latency.searched("tiny", 3, QUIET)
    assert sorted(row["trial"] for row in figures["trials"]) == [0, 1, 2]
    assert all(set(row) == {"trial", "searched", "fresh"} for row in figures["trials"])
