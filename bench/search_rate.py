"""Candidates an hour of the default search on this machine: as it ships (a worker a core), on one
worker as it shipped before, each with latency measured and from a latency table, side by side with
the default search of the tree the estimators issue started from.

The estimators issue asks the default search (`nas search --space mbconv --target-latency 20ms`) for
10x the 120 candidates an hour it started from, measured on another machine with the code of
``BASE_COMMIT`` (the 4-epoch proxy, one process). So this bench runs that commit's own default search
too (``git archive`` of it, run with this environment's packages, its own SQLite file, no latency
table: a fresh machine, as the issue measured it), once before today's set-ups and once after them,
and gives every rate as a factor of that base measured in the same run (the two base runs bracket
any drift of the machine's speed; their mean is the base). The fixed 120 an hour stays beside it.

A default trial today is the one-epoch proxy on one thread plus, while the device has no latency
table, a measurement of the whole network. This bench runs that search (default estimator, TPE,
pruner and warm start) in four set-ups one after the other, each on a study of its own in one SQLite
file (the default database):

- ``one-measured``: one worker (``--workers 1``, the default until 2026-12-01), latency measured;
- ``shipped-measured``: ``--workers auto`` (the default: a worker a core), latency measured, as on a
  fresh machine: a measurement waits for the other workers' training steps under way and holds
  their next ones back (``nas.turns``);
- ``one-table``: one worker, latency from this device's table (``nas latency build``, built first);
- ``shipped-table``: ``--workers auto`` and the table, as every search after ``nas latency build``.

Rates are steady state, from the moment every worker has finished its first trial to the last trial's
end (as ``scale_out.py``); the whole call's rate is beside it. Afterwards every network a measuring
set-up timed is timed again in the measuring child with nothing else running, and the bench reports
the search's latency over that quiet one (1.00: the search timed it as the machine runs it alone).
``met`` says which set-ups reach 10x the same run's base, ``met_vs_issue`` 10x the fixed 120.

    python bench/search_rate.py [--space mbconv] [--trials 20] [--base-trials 10] [--base REV]
                                [--calibration 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import optuna
from rich.console import Console
from rich.table import Table

from _common import save, steady_state
from nas import SearchConfig
from nas.latency import LatencySettings, build_table, measure_network
from nas.results import record_genotype
from nas.workers import ScaleOut, search
from storage import Store, TrialRecord

BASE_RATE = 120.0  # candidates an hour of the default search when the estimators issue was filed
BASE_COMMIT = "dc2f927"  # the last commit before the estimators work began (3200aa1): the search the issue timed
TARGET_FACTOR = 10
REPOSITORY = Path(__file__).resolve().parent.parent


def rates(frozen: list[optuna.trial.FrozenTrial], workers: int, wall: float) -> dict[str, float]:
    """A search's wall time, steady-state rate (after each worker's first trial) and whole-call rate."""
    steady_s, per_hour = steady_state((t.datetime_complete for t in frozen), workers)
    return {"wall_s": wall, "steady_s": steady_s, "per_hour": per_hour,
            "wall_per_hour": 3600 * sum(t.datetime_complete is not None for t in frozen) / wall}


def run(name: str, url: str, workers: int | None, latency_mode: str, trials: int, space: str = "mbconv") -> dict[str, Any]:
    """One default search of ``trials`` candidates on a study of its own; its rates and latencies.
    ``workers=None`` is the default ``--workers auto``."""
    config = SearchConfig(target_latency_ms=20.0, space=space, trials=trials, latency_mode=latency_mode, study=f"rate-{name}")
    store = Store.open(url)
    scale = ScaleOut(workers)
    at_once = scale.trials_at_once(config)
    start = time.perf_counter()
    result = search(config, store, scale, top=0)
    wall = time.perf_counter() - start
    frozen = store.optuna().get_all_trials(store.optuna().get_study_id_from_name(config.study_name))
    records = [TrialRecord.from_trial(t) for t in frozen]
    return {"name": name, "workers": at_once, "latency": result.latency_source, "storage": url.split(":")[0],
            "trials": len(frozen), "states": result.counts, **rates(frozen, at_once, wall),
            "latency_ms": {r.arch_key: r.latency_ms for r in records if r.latency_ms is not None},
            "genotypes": {r.arch_key: record_genotype(r) for r in records if r.latency_ms is not None}}


def export_tree(rev: str, folder: Path) -> Path:
    """The source tree of commit ``rev`` of this repository, written into ``folder`` (made)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=REPOSITORY, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def tree_env(source: Path) -> dict[str, str]:
    """The environment that runs the source tree ``source``: its packages come first on the path
    (the installed ``nas`` is an editable install, whose finder Python asks last), this
    environment's libraries after them."""
    return {**os.environ, "PYTHONPATH": str(source), "NO_COLOR": "1"}


def run_tree(name: str, source: Path, folder: Path, trials: int, space: str = "mbconv", args: tuple[str, ...] = ()) -> dict[str, Any]:
    """The default search of the source tree ``source``, ``trials`` candidates in a fresh SQLite
    file in ``folder`` with latency measured (no table, as on a fresh machine), one process: its
    rate from its stored trials, as ``run`` gives today's. A tree that has ``--workers`` needs
    ``args=("--workers", "1")``. Its wall time includes the command's start-up (``run``'s does not)."""
    folder.mkdir(parents=True)
    url = f"sqlite:///{folder / 'nas.db'}"
    command = [sys.executable, "-m", "nas", "search", "--space", space, "--target-latency", "20ms", "--trials", str(trials),
               "--latency", "measure", "--storage", url, "--study", f"rate-{name}", *args]
    start = time.perf_counter()
    with open(folder / "search.log", "w+") as log:
        finished = subprocess.run(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=log, env=tree_env(source))
        if finished.returncode:
            log.seek(0)
            last = (log.read().strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"the {name} search ({source}) failed with exit status {finished.returncode}: {last}")
    wall = time.perf_counter() - start
    frozen = optuna.load_study(study_name=f"rate-{name}", storage=url).get_trials(deepcopy=False)
    return {"name": name, "workers": 1, "latency": "measured", "storage": "sqlite", "trials": len(frozen),
            "states": dict(Counter(t.state.name for t in frozen)), **rates(frozen, 1, wall)}


def against_quiet(row: dict[str, Any], quiet: dict[str, float]) -> dict[str, Any] | None:
    """This set-up's latencies over the same networks timed with nothing else running (ratios)."""
    shared = [key for key in row["latency_ms"] if key in quiet]
    if not shared:
        return None
    ratios = [row["latency_ms"][key] / quiet[key] for key in shared]
    return {"networks": len(shared), "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--trials", type=int, default=20, help="candidates a set-up")
    parser.add_argument("--base", default=BASE_COMMIT, help="the commit whose default search is the base (one from before "
                        "2026-12-01: later ones default to a worker a core)")
    parser.add_argument("--base-trials", type=int, default=10, help="candidates of each of the two base runs (at least 2)")
    parser.add_argument("--calibration", type=int, default=60, help="whole networks that calibrate the table")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.base_trials < 2 or args.trials < 3:
        parser.error("--base-trials must be at least 2 and --trials at least 3 (a steady state starts after each worker's first trial)")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/rate.db"
        base_tree = export_tree(args.base, Path(folder) / "base-tree")
        bases = [run_tree("base-before", base_tree, Path(folder) / "base-before", args.base_trials, args.space)]
        rows.append(run("one-measured", url, 1, "measure", args.trials, args.space))
        rows.append(run("shipped-measured", url, None, "measure", args.trials, args.space))
        start = time.perf_counter()
        build_table(Store.open(url), args.space, LatencySettings(), calibration_samples=args.calibration)
        build_s = time.perf_counter() - start
        rows.append(run("one-table", url, 1, "lut", args.trials, args.space))
        rows.append(run("shipped-table", url, None, "lut", args.trials, args.space))
        bases.append(run_tree("base-after", base_tree, Path(folder) / "base-after", args.base_trials, args.space))
    genotypes = {key: g for row in rows if row["latency"] == "measured" for key, g in row["genotypes"].items()}
    quiet = {key: measure_network(genotype, LatencySettings()).latency_ms for key, genotype in genotypes.items()}
    base_per_hour = statistics.mean(b["per_hour"] for b in bases)
    for row in rows:
        row["factor_vs_base"] = row["per_hour"] / base_per_hour
        row["factor_vs_issue"] = row["per_hour"] / BASE_RATE
        row["latency_vs_quiet"] = against_quiet(row, quiet) if row["latency"] == "measured" else None
        row.pop("latency_ms")
        row.pop("genotypes")
    figures = {"space": args.space, "trials": args.trials, "table_build_s": build_s,
               "base": {"commit": args.base, "runs": bases, "per_hour": base_per_hour,
                        "after_over_before": bases[1]["per_hour"] / bases[0]["per_hour"]},
               "issue_base_per_hour": BASE_RATE, "target_factor": TARGET_FACTOR,
               "rows": rows, "met": {r["name"]: r["factor_vs_base"] >= TARGET_FACTOR for r in rows},  # against the same run's base
               "met_vs_issue": {r["name"]: r["factor_vs_issue"] >= TARGET_FACTOR for r in rows}}
    path = save("search_rate", figures)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return
    table = Table(title=f"default search over {args.space}, {args.trials} candidates a set-up ({path}); table built in {build_s:.0f} s; "
                        f"base: {args.base}'s default search, {base_per_hour:.0f}/h (before {bases[0]['per_hour']:.0f}, after {bases[1]['per_hour']:.0f})")
    for column in ("set-up", "workers", "latency", "candidates/hour", "x base (same run)", f"x {BASE_RATE:.0f}/h (the issue's)",
                   "with start-up /hour", "latency / quiet timing (median, range)"):
        table.add_column(column)
    for r in rows:
        versus = r["latency_vs_quiet"]
        table.add_row(r["name"], str(r["workers"]), r["latency"], f"{r['per_hour']:.0f}", f"{r['factor_vs_base']:.1f}",
                      f"{r['factor_vs_issue']:.1f}", f"{r['wall_per_hour']:.0f}",
                      "-" if versus is None else f"{versus['median']:.3f} ({versus['min']:.2f}-{versus['max']:.2f}, {versus['networks']} nets)")
    Console(width=180).print(table)


if __name__ == "__main__":
    main()
