"""bench/search_rate.py: rates from the stored trials, latencies compared only where networks match."""

import datetime
import subprocess
import sys
from pathlib import Path

import pytest

from bench_scripts import load

_rate = load("search_rate")


def test_latencies_are_compared_only_on_the_networks_both_timed():
    row = {"latency_ms": {"a": 11.0, "b": 9.0, "c": 5.0}}
    versus = _rate.against_quiet(row, {"a": 10.0, "b": 10.0, "d": 1.0})
    assert versus == {"networks": 2, "median": 1.0, "min": 0.9, "max": 1.1}
    assert _rate.against_quiet(row, {"d": 1.0}) is None


def test_the_steady_state_starts_once_every_worker_has_finished_a_trial():
    start = datetime.datetime(2026, 11, 30, 12, 0, 0)
    ends = [start + datetime.timedelta(seconds=s) for s in (30, 5, 10, 20)] + [None]  # None: a trial never finished
    assert _rate.steady_state(ends, 1) == (25.0, 3600 * 3 / 25)  # from the first end (5 s) to the last (30 s)
    assert _rate.steady_state(ends, 2) == (20.0, 3600 * 2 / 20)  # from the second end (10 s)


def test_a_set_up_runs_exactly_its_budget_on_its_own_study(tmp_path):
    row = _rate.run("measured", f"sqlite:///{tmp_path / 'rate.db'}", 1, "measure", 3, space="tiny")
    assert row["trials"] == 3 and row["states"] == {"COMPLETE": 3} and row["latency"] == "measured"
    assert row["workers"] == 1 and row["storage"] == "sqlite" and 1 <= len(row["latency_ms"]) <= 3
    assert row["genotypes"].keys() == row["latency_ms"].keys()  # each timed network can be timed again


@pytest.mark.slow  # spawns two workers
def test_two_workers_share_one_sqlite_file_and_run_exactly_the_budget(tmp_path):
    row = _rate.run("measured-2", f"sqlite:///{tmp_path / 'rate.db'}", 2, "measure", 4, space="tiny")
    assert row["trials"] == 4 and row["states"] == {"COMPLETE": 4} and row["workers"] == 2


def test_an_exported_tree_s_packages_shadow_the_installed_ones(tmp_path):
    tree = _rate.export_tree("HEAD", tmp_path / "tree")
    shown = subprocess.run([sys.executable, "-c", "import nas, storage, search_spaces, scaling, dashboards as d; "
                            "print('\\n'.join(m.__file__ for m in (nas, storage, search_spaces, scaling, d)))"],
                           cwd=tmp_path, env=_rate.tree_env(tree), capture_output=True, text=True, check=True).stdout.split()
    assert len(shown) == 5 and all(Path(f).is_relative_to(tree) for f in shown)


@pytest.mark.slow  # a search in a process of its own
def test_a_commit_s_tree_runs_its_own_default_search_in_a_folder_of_its_own(tmp_path):
    tree = _rate.export_tree("HEAD", tmp_path / "tree")
    row = _rate.run_tree("base", tree, tmp_path / "run", 2, space="tiny", args=("--workers", "1"))
    assert row["trials"] == 2 and row["states"] == {"COMPLETE": 2} and row["per_hour"] > 0
    assert (tmp_path / "run" / "nas.db").is_file() and row["wall_s"] > row["steady_s"]
