"""The latency model on this machine: build (or reuse) the table, validate on unseen networks.

    python bench/latency_model.py [--space mbconv] [--samples 100] [--calibration 40] [--backend torch] [--json]

Needs an otherwise idle CPU (it measures). The table lives in ``bench/.latency_model.db`` so a
second run reuses it (``build_s`` is then the stored build time of the first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save
from nas.latency import LatencySettings, build_table, load_predictor, predictions_per_second, random_networks, validate_table
from search_spaces import get_space
from storage import Store

STORAGE = f"sqlite:///{Path(__file__).parent / '.latency_model.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--calibration", type=int, default=60)
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--storage", default=STORAGE)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = LatencySettings.for_backend(args.backend)
    store = Store.open(args.storage)
    start = time.perf_counter()
    built = build_table(store, args.space, settings, calibration_samples=args.calibration)
    build_call_s = time.perf_counter() - start
    valid = validate_table(store, args.space, settings, samples=args.samples)

    predictor = load_predictor(store, settings, args.space)
    networks = random_networks(get_space(args.space), 1000, seed=99)
    per_s = predictions_per_second(predictor, networks)
    measured = [p.measured_ms for p in valid.points]
    stored = valid.summary()
    figures = {
        "space": args.space, "device": built.device, "samples": valid.samples,
        **{name: stored[name] for name in ("within_10pct", "within_5pct", "rmse_ms", "mean_abs_error_pct", "kendall_tau",
                                           "spearman", "macs_kendall_tau", "uncalibrated_within_10pct", "sum_to_whole_ratio",
                                           "measurement_noise", "calibration")},
        "predictions_per_s": per_s, "measurements_per_s": valid.measurements_per_s,
        "speedup": per_s / valid.measurements_per_s, "build_s": built.build_s, "build_call_s": build_call_s,
        "entries": built.entries, "measured_latency_ms": {"min": min(measured), "max": max(measured)},
    }
    path = save("latency_model", figures)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return
    noise = valid.measurement_noise
    table = Table(title=f"latency model, space {args.space}, {settings.backend}, {valid.samples} unseen networks")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target / reference", justify="right")
    table.add_row("within +-10%", f"{100 * figures['within_10pct']:.1f}%", ">= 95% (nn-Meter 99.0%)")
    table.add_row("within +-5%", f"{100 * figures['within_5pct']:.1f}%", "")
    table.add_row("RMSE", f"{figures['rmse_ms']:.3f} ms", "")
    table.add_row("Kendall tau (MACs' tau)", f"{figures['kendall_tau']:.3f} ({figures['macs_kendall_tau']:.3f})", "")
    table.add_row("uncalibrated sum within +-10%", f"{100 * figures['uncalibrated_within_10pct']:.1f}%", "")
    if noise.rerun_within_10pct is not None:
        table.add_row("one round vs another within +-10% / +-5%",
                      f"{100 * noise.rerun_within_10pct:.0f}% / {100 * noise.rerun_within_5pct:.0f}%", "the noise floor")
    table.add_row("predictions per second", f"{per_s:,.0f}", ">= 10,000")
    table.add_row("measurements per second", f"{figures['measurements_per_s']:.2f}", f"{figures['speedup']:,.0f}x fewer")
    table.add_row("table build", f"{figures['build_s']:.0f} s, {built.entries} layers", "")
    Console(width=120).print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
