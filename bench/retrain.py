"""The best architecture of a default search and two baselines, trained with the same budget:
`nas search --space mbconv --target-latency 20ms`, then `nas train BEST` and `nas baselines` with
one recipe (BiT-HyperRule by default), accuracy, params, MACs and measured latency side by side.

    python bench/retrain.py [--trials 10] [--epochs auto] [--resolution auto] [--json]
    python bench/retrain.py --space tiny --trials 2 --epochs 1 --resolution 32   # a smoke check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save

BASELINES = ("mobilenetv3_large_100", "mobilenetv2_100")
NAS = [sys.executable, "-m", "nas"]


def _json(args: list[str], cwd: str) -> dict | list:
    proc = subprocess.run([*NAS, *args, "--json"], cwd=cwd, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", default="auto")
    parser.add_argument("--resolution", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recipe = ["--epochs", args.epochs, "--resolution", args.resolution]
    with tempfile.TemporaryDirectory() as tmp:
        _json(["search", "--space", args.space, "--target-latency", "20ms", "--trials", str(args.trials)], tmp)
        best = _json(["best", "--top", "1"], tmp)["best"][0]
        start = time.perf_counter()
        found = _json(["train", str(best["number"]), *recipe, "-o", "found"], tmp)
        found_s = time.perf_counter() - start
        start = time.perf_counter()
        baselines = _json(["baselines", *[f for name in BASELINES for f in ("--models", name)], *recipe], tmp)
        baselines_s = time.perf_counter() - start
    keys = ("name", "accuracy", "latency_ms", "latency_spread_ms", "params", "macs")
    rows = [{**{k: found[k] for k in keys}, "name": f"best found (trial {best['number']})",
             "proxy_accuracy": best["accuracy"]}] + [{k: r[k] for k in keys} for r in baselines]
    figures = {"space": args.space, "trials": args.trials, "plan": found["plan"], "train_wall_s": found_s,
               "baselines_wall_s": baselines_s, "comparison": rows}
    path = save("retrain", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    plan = found["plan"]
    table = Table(title=f"retrained with one budget: {plan['epochs']} epochs x {plan['steps_per_epoch']} steps at "
                        f"{plan['resolution']} px, mixup {plan['mixup']:g}")
    for column in ("network", "val acc %", "latency ms", "± ms", "params M", "MACs M"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for r in rows:
        table.add_row(r["name"], f"{100 * r['accuracy']:.1f}", f"{r['latency_ms']:.2f}", f"{r['latency_spread_ms']:.2f}",
                      f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e6:.0f}")
    Console(width=120).print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
