"""The README's default search, timed: 10 trials of `nas search --space mbconv --target-latency 20ms`,
then MobileNetV3-Large and MobileNetV2 measured and proxy-trained in the same study and run.

    python bench/default_search.py [--trials 10] [--json]
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
SEARCH = [sys.executable, "-m", "nas", "search", "--space", "mbconv", "--target-latency", "20ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([*SEARCH, "--trials", str(args.trials), "--json"], cwd=tmp, check=True, capture_output=True)
        search_wall_s = time.perf_counter() - start
        seeds = [flag for name in BASELINES for flag in ("--seed-arch", name)]
        subprocess.run([*SEARCH, "--trials", str(args.trials + len(BASELINES)), *seeds, "--json"], cwd=tmp,
                       check=True, capture_output=True)
        listing = json.loads(subprocess.run([sys.executable, "-m", "nas", "best", "--top", "1000", "--json"], cwd=tmp,
                                            check=True, capture_output=True, text=True).stdout)
    ranked = listing["best"]
    searched = [r for r in ranked if not r["seed_arch"]]
    rows = ([{**searched[0], "name": f"best found (trial {searched[0]['number']})"}] if searched else []) + [
        {**r, "name": r["seed_arch"]} for r in ranked if r["seed_arch"]]
    keys = ("name", "reward", "accuracy", "latency_ms", "latency_spread_ms", "params", "macs", "arch_def")
    figures = {
        "trials": args.trials,
        "search_wall_s": search_wall_s,
        "per_trial_s": search_wall_s / args.trials,
        "target_latency_ms": listing["target_latency_ms"],
        "comparison": [{k: r[k] for k in keys} for r in rows],
    }
    path = save("default_search", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"default search: {args.trials} trials in {search_wall_s:.0f} s; T = 20 ms, soft reward")
    for column in ("network", "reward", "proxy acc %", "latency ms", "± ms", "params M", "MACs M"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for r in rows:
        table.add_row(r["name"], f"{r['reward']:.4f}", f"{100 * r['accuracy']:.1f}", f"{r['latency_ms']:.2f}",
                      f"{r['latency_spread_ms']:.2f}", f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e6:.0f}")
    Console(width=120).print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
