"""Candidates an hour of the default search on this machine: as it ships (a worker a core), on one
worker as it shipped before, each with latency measured and from a latency table.

The estimators issue asks the default search (`nas search --space mbconv --target-latency 20ms`) for
10x the 120 candidates an hour it started from. A default trial is the one-epoch proxy on one thread
plus, while the device has no latency table, a measurement of the whole network. This bench runs that
search (default estimator, TPE, pruner and warm start) in four set-ups one after the other, each on a
study of its own in one SQLite file (the default database):

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

    python bench/search_rate.py [--space mbconv] [--trials 20] [--calibration 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save, steady_state
from nas import SearchConfig
from nas.latency import LatencySettings, build_table, measure_network
from nas.results import record_genotype
from nas.workers import ScaleOut, search
from storage import Store, TrialRecord

BASE_RATE = 120.0  # candidates an hour of the default search when the estimators issue was filed
TARGET_FACTOR = 10


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
    steady_s, per_hour = steady_state((t.datetime_complete for t in frozen), at_once)
    records = [TrialRecord.from_trial(t) for t in frozen]
    return {"name": name, "workers": at_once, "latency": result.latency_source, "storage": url.split(":")[0],
            "trials": len(frozen), "states": result.counts, "wall_s": wall, "steady_s": steady_s,
            "per_hour": per_hour, "wall_per_hour": 3600 * sum(t.datetime_complete is not None for t in frozen) / wall,
            "latency_ms": {r.arch_key: r.latency_ms for r in records if r.latency_ms is not None},
            "genotypes": {r.arch_key: record_genotype(r) for r in records if r.latency_ms is not None}}


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
    parser.add_argument("--calibration", type=int, default=60, help="whole networks that calibrate the table")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/rate.db"
        rows.append(run("one-measured", url, 1, "measure", args.trials, args.space))
        rows.append(run("shipped-measured", url, None, "measure", args.trials, args.space))
        start = time.perf_counter()
        build_table(Store.open(url), args.space, LatencySettings(), calibration_samples=args.calibration)
        build_s = time.perf_counter() - start
        rows.append(run("one-table", url, 1, "lut", args.trials, args.space))
        rows.append(run("shipped-table", url, None, "lut", args.trials, args.space))
    genotypes = {key: g for row in rows if row["latency"] == "measured" for key, g in row["genotypes"].items()}
    quiet = {key: measure_network(genotype, LatencySettings()).latency_ms for key, genotype in genotypes.items()}
    for row in rows:
        row["factor_vs_base"] = row["per_hour"] / BASE_RATE
        row["latency_vs_quiet"] = against_quiet(row, quiet) if row["latency"] == "measured" else None
        row.pop("latency_ms")
        row.pop("genotypes")
    figures = {"space": args.space, "trials": args.trials, "table_build_s": build_s, "base_per_hour": BASE_RATE, "target_factor": TARGET_FACTOR,
               "rows": rows, "met": {r["name"]: r["factor_vs_base"] >= TARGET_FACTOR for r in rows}}
    path = save("search_rate", figures)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return
    table = Table(title=f"default search over {args.space}, {args.trials} candidates a set-up ({path}); table built in {build_s:.0f} s")
    for column in ("set-up", "workers", "latency", "candidates/hour", f"x {BASE_RATE:.0f}/h", "with start-up /hour",
                   "latency / quiet timing (median, range)"):
        table.add_column(column)
    for r in rows:
        versus = r["latency_vs_quiet"]
        table.add_row(r["name"], str(r["workers"]), r["latency"], f"{r['per_hour']:.0f}", f"{r['factor_vs_base']:.1f}",
                      f"{r['wall_per_hour']:.0f}",
                      "-" if versus is None else f"{versus['median']:.3f} ({versus['min']:.2f}-{versus['max']:.2f}, {versus['networks']} nets)")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
