"""Trials per hour with 1 and 2 workers: SQLite and PostgreSQL worker processes, Ray Tune.

Every trial costs a fixed ``--trial-s`` (a sleep: no CPU), so the figures measure the framework
(asking, storing, handing out trials), not this shared machine's CPU. Throughput is the steady
state, from the moment every worker has finished its first trial (start-up, such as spawning
workers or Ray actors importing torch, is behind it) to the last trial's end, as stored in the
study; the whole command's rate, start-up included, is reported beside it. Per-trial overhead is
the time a worker spends per trial beyond the trial itself. Target: 2 workers >= 1.8x one worker on
SQLite, PostgreSQL and Ray.
PostgreSQL is a throwaway cluster (initdb in a temporary folder), as the tests start one.

    python bench/scale_out.py [--quick] [--trials 20] [--trial-s 1.0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save, steady_state, temporary_postgres
from nas import SearchConfig
from nas.estimators import LatencyEstimate, Report
from nas.workers import ScaleOut, search
from search_spaces import Genotype
from storage import Store

TARGET_SPEEDUP = 1.8
DEVICE = {"cpu": "bench", "threads": 1, "backend": "none", "resolution": 64, "batch": 1}


@dataclass(frozen=True)
class FixedLatency:
    """1 ms a block: no timing, so workers never wait on the latency lock."""

    @property
    def device(self) -> dict[str, Any]:
        return DEVICE

    def latency(self, genotype: Genotype) -> LatencyEstimate:
        return LatencyEstimate(float(genotype.depth), "measured", spread_ms=0.0, load_avg=0.0)


@dataclass(frozen=True)
class SleepAccuracy:
    """A trial that costs ``seconds`` of wall time and no CPU, reported over two steps."""

    seconds: float = 1.0

    @property
    def name(self) -> str:
        return "sleep"

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"name": self.name, "data": "digits", "seconds": self.seconds}

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        for step in range(2):
            time.sleep(self.seconds / 2)
            report(step, 0.5)
        return 0.5


def measure(name: str, url: str, scale: ScaleOut, trials: int, trial_s: float) -> dict[str, Any]:
    """One search of ``trials`` fixed-cost trials on a study of its own."""
    config = SearchConfig(space="tiny", target_latency_ms=10.0, trials=trials, pruner="none", sampler="random",
                          study=f"scale-{name}-{time.time_ns()}")
    store = Store.open(url)
    start = time.perf_counter()
    result = search(config, store, scale, top=0, accuracy=SleepAccuracy(trial_s), latency=FixedLatency())
    wall = time.perf_counter() - start
    trials_run = store.optuna().get_all_trials(store.optuna().get_study_id_from_name(config.study_name))
    steady_s, per_hour = steady_state((t.datetime_complete for t in trials_run), scale.workers)
    return {"name": name, "runner": scale.runner, "workers": scale.workers, "storage": url.split(":")[0],
            "trials": len(trials_run), "complete": result.counts.get("COMPLETE", 0), "steady_s": steady_s,
            "wall_s": wall, "trials_per_hour": per_hour, "overhead_per_trial_s": 3600 * scale.workers / per_hour - trial_s,
            "wall_trials_per_hour": len(trials_run) / wall * 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 trials a configuration: checks the bench runs")
    parser.add_argument("--trials", type=int, default=20, help="trials a configuration")
    parser.add_argument("--trial-s", type=float, default=1.0, help="the fixed cost of a trial")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    trials = 6 if args.quick else args.trials
    import ray

    from nas.ray_runner import start_ray

    rows = []
    with tempfile.TemporaryDirectory() as folder, temporary_postgres() as server:
        for workers in (1, 2):
            rows.append(measure(f"sqlite-{workers}", f"sqlite:///{folder}/bench.db", ScaleOut(workers), trials, args.trial_s))
        for workers in (1, 2):
            rows.append(measure(f"postgresql-{workers}", server.url, ScaleOut(workers), trials, args.trial_s))
        start_ray(None, 2)  # once for both Ray runs: its start-up is not a trial's cost
        try:
            for workers in (1, 2):
                rows.append(measure(f"ray-{workers}", server.url, ScaleOut(workers, "ray"), trials, args.trial_s))
        finally:
            ray.shutdown()
    by_name = {r["name"]: r for r in rows}
    speedups = {kind: by_name[f"{kind}-2"]["trials_per_hour"] / by_name[f"{kind}-1"]["trials_per_hour"]
                for kind in ("sqlite", "postgresql", "ray")}
    figures = {"trials": trials, "trial_s": args.trial_s, "quick": args.quick, "rows": rows,
               "speedup_2_workers": speedups, "target_speedup": TARGET_SPEEDUP,
               "meets_target": all(s >= TARGET_SPEEDUP for s in speedups.values())}
    path = save("scale_out", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"scale-out: {trials} trials of {args.trial_s:g} s each ({path})")
    for column in ("configuration", "trials/hour", "overhead/trial (s)", "with start-up: trials/hour", "wall (s)", "complete"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], f"{r['trials_per_hour']:.0f}", f"{r['overhead_per_trial_s']:.3f}",
                      f"{r['wall_trials_per_hour']:.0f}", f"{r['wall_s']:.1f}", f"{r['complete']}/{r['trials']}")
    console = Console(width=160)  # piped output: never cut a column to fit 80
    console.print(table)
    for kind, speedup in speedups.items():
        console.print(f"{kind}: 2 workers {speedup:.2f}x one worker (target >= {TARGET_SPEEDUP}x)")


if __name__ == "__main__":
    main()
