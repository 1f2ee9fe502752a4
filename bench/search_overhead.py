"""Per-trial time spent in nas itself (sampling, building, storing) against a bare Optuna trial.

The sampling figure is TPE's cost with a full default budget of history. Both run in one process on one SQLite file, side by side, so the ratio is robust to a noisy
machine. Target: nas's own work under 2% of a default trial's time.

    python bench/search_overhead.py [--trials 3] [--bare 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import optuna
from rich.console import Console
from rich.table import Table

from _common import save
from nas import SearchConfig, run_search
from nas.config import DEFAULT_TRIALS
from nas.search import make_sampler
from nas.study import HEARTBEAT_S
from search_spaces import get_space
from storage import Store, TrialRecord

OVERHEAD_PHASES = ("sample_s", "count_s", "store_s")


def bare_trial_seconds(store: Store, n: int) -> float:
    """Median wall time of an Optuna trial that does nothing, on the same storage and heartbeat."""
    study = optuna.create_study(study_name="bare", storage=store.optuna(HEARTBEAT_S))
    times: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        study.optimize(lambda trial: 0.0, n_trials=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tpe_sample_seconds(store: Store, history: int) -> float:
    """Seconds TPE takes to sample an mbconv architecture once ``history`` trials are stored:
    the sampler's cost grows with history, so this is its cost at the end of a default budget."""
    config = SearchConfig(target_latency_ms=20.0)
    study = optuna.create_study(study_name="tpe", storage=store.optuna(), sampler=make_sampler(config, 0))
    space = get_space(config.space)
    for value in range(history):
        trial = study.ask()
        space.sample(trial)
        study.tell(trial, value / history)
    trial = study.ask()
    start = time.perf_counter()
    space.sample(trial)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="default-search trials to time")
    parser.add_argument("--bare", type=int, default=30, help="bare Optuna trials to time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        bare_s = bare_trial_seconds(store, args.bare)
        tpe_s = tpe_sample_seconds(store, DEFAULT_TRIALS - 1)
        config = SearchConfig(target_latency_ms=20.0, trials=args.trials, study="default", pruner="none")
        run_search(config, store)
        trials = optuna.load_study(study_name="default", storage=store.optuna()).trials

    timings = [TrialRecord.from_trial(t).timings_s for t in trials]
    phases = {phase: statistics.median(t.get(phase, 0.0) for t in timings) for phase in timings[0]}
    trial_s = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    # the timed trials are TPE's random start-up ones: charge sampling at its end-of-budget cost
    phases["sample_s"] = max(phases["sample_s"], tpe_s)
    nas_s = sum(phases[p] for p in OVERHEAD_PHASES)
    figures = {
        "default_trial_s": trial_s,
        "phases_s": phases,
        "nas_overhead_s": nas_s,
        "bare_optuna_trial_s": bare_s,
        "tpe_sample_at_budget_s": tpe_s,
        "nas_overhead_share": nas_s / trial_s,
        "nas_overhead_vs_bare_optuna": nas_s / bare_s,
        "target_share": 0.02,
        "meets_target": nas_s / trial_s < 0.02,
        "trials": len(trials),
    }
    path = save("search_overhead", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"per-trial time, median of {len(trials)} default trials (mbconv, 20 ms)")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    table.add_column("share of trial", justify="right")
    for phase, seconds in phases.items():
        table.add_row(phase.removesuffix("_s") + (" (nas)" if phase in OVERHEAD_PHASES else ""),
                      f"{seconds:.4f}", f"{100 * seconds / trial_s:.2f}%")
    table.add_row("bare Optuna trial", f"{bare_s:.4f}", f"{100 * bare_s / trial_s:.2f}%")
    table.add_row("nas overhead (sample+count+store)", f"{nas_s:.4f}", f"{100 * nas_s / trial_s:.2f}%")
    table.add_row("whole trial", f"{trial_s:.3f}", "100%")
    Console(width=120).print(table)
    print(f"target < 2%: {'met' if figures['meets_target'] else 'MISSED'}; saved {path}")


if __name__ == "__main__":
    main()
