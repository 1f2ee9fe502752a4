"""NetAdapt refinement: `nas refine mobilenetv2_100` on the built-in data to 1/1.5 of its measured latency.

Measures the start (``--rounds`` rounds, the fastest kept), refines it to ``start / speedup`` with
inherited weights (the refinement anchors its latencies on that same figure), then measures
the start and the result side by side in ``--rounds`` interleaved rounds: this VM's speed drifts
by 20-30% for seconds at a time, so two networks timed minutes apart compare the drift, not the
networks. Reports their proxy accuracies after the same long fine-tuning and the iterations taken.
Target: >= 1.5x measured speed-up with <= 1 point of accuracy lost.

    python bench/netadapt.py                 # ~10 min on this 2-core CPU (the study in bench/.netadapt.db
                                             # resumes; --db elsewhere for a fresh run)
    python bench/netadapt.py --quick         # 1.05x, tiny budgets: a smoke check of a few minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save

from nas.architecture import Architecture
from nas.latency import LatencySettings, measure_networks
from nas.refine import RefineConfig, refine
from search_spaces import Genotype, seed_architecture
from storage import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="mobilenetv2_100")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--speedup", type=float, default=1.5, help="target: the start's measured latency / this")
    parser.add_argument("--step-fraction", type=float, default=0.05)
    parser.add_argument("--decay", type=float, default=0.96)
    parser.add_argument("--pretrain", type=int, default=180)
    parser.add_argument("--short-tune", type=int, default=40)
    parser.add_argument("--long-tune", type=int, default=180)
    parser.add_argument("--rounds", type=int, default=5, help="side-by-side timing rounds; each network keeps its fastest")
    parser.add_argument("--db", type=Path, default=Path(__file__).parent / ".netadapt.db")
    parser.add_argument("--quick", action="store_true", help="1.05x with tiny budgets: a smoke check")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.speedup, args.pretrain, args.short_tune, args.long_tune = 1.05, 20, 2, 10

    store = Store.open(f"sqlite:///{args.db.resolve()}")
    genotype = seed_architecture(args.network)
    settings = LatencySettings()
    rounds = replace(settings, passes=1 if args.quick else args.rounds)
    start_ms = measure_networks([genotype], rounds, "measure the start")[0].latency_ms
    target_ms = round(start_ms / args.speedup, 2)
    config = RefineConfig(target_ms, decay=args.decay, step_fraction=args.step_fraction, short_tune=args.short_tune,
                          long_tune=args.long_tune, pretrain=args.pretrain, data=args.data, latency=settings,
                          study=f"bench-{args.network}-{target_ms:g}ms-{'quick' if args.quick else 'full'}",
                          start_latency_ms=start_ms)
    started = time.perf_counter()
    result = refine(Architecture(args.network, genotype), config, store)
    wall_s = time.perf_counter() - started
    end = Genotype.from_arch_def(result.arch_def, **result.network)
    start_side, end_side = measure_networks([genotype, end], rounds, "measure start and result side by side")
    figures = {
        "network": args.network, "data": args.data, "target_latency_ms": target_ms, "reached": result.reached,
        "reason": result.reason, "start_latency_ms": start_side.latency_ms, "end_latency_ms": end_side.latency_ms,
        "speedup": start_side.latency_ms / end_side.latency_ms, "timing_rounds": rounds.passes,
        "start_rounds_ms": start_side.pass_ms, "end_rounds_ms": end_side.pass_ms,
        "in_run": {"start_latency_ms": result.start_latency_ms, "end_latency_ms": result.end_latency_ms,
                   "speedup": result.speedup, "note": "the refinement's own figures: 3 rounds, after long fine-tuning"},
        "iterations": result.iterations, "start_accuracy": result.start_accuracy,
        "end_accuracy": result.end_accuracy, "accuracy_lost_points": 100 * (result.start_accuracy - result.end_accuracy),
        "wall_s": wall_s, "quick": args.quick, "settings": config.schedule(), "study": result.study,
        "arch_def": result.arch_def, "path": [vars(step) for step in result.path],
    }
    path = save("netadapt-quick" if args.quick else "netadapt", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"NetAdapt: {args.network} to {target_ms:g} ms on {args.data} ({wall_s / 60:.1f} min)")
    for column in ("", "start", "result"):
        table.add_column(column, justify="right")
    table.add_row(f"latency ms (side by side, fastest of {rounds.passes})", f"{start_side.latency_ms:.2f}",
                  f"{end_side.latency_ms:.2f}")
    table.add_row("val acc % (same long fine-tuning)", f"{100 * result.start_accuracy:.1f}", f"{100 * result.end_accuracy:.1f}")
    table.add_row("speed-up / iterations", "", f"{figures['speedup']:.2f}x / {result.iterations}")
    Console().print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
