"""Compound scaling, timed: `nas scale grid BASE --step 0.1` on the built-in dataset, the triple it
chooses, and how close the chosen (and the paper's) coefficients come to doubling MACs per phi.

    python bench/scaling.py [--base efficientnet_b0] [--step 0.1] [--tolerance 0.05] [--epochs 4] [--json]
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

# bench/ is first on sys.path, where this file's name shadows the `scaling` package: drive the CLI only
NAS = [sys.executable, "-m", "nas"]
PAPER = (1.2, 1.1, 1.15)  # EfficientNet's alpha, beta, gamma
POINT_KEYS = ("label", "alpha", "beta", "gamma", "resolution", "blocks", "params", "macs", "accuracy", "latency_ms",
              "latency_spread_ms", "reward")


def macs_ratios(base: str, triple: tuple[float, float, float], resolution: int | None, tmp: str) -> list[dict]:
    """MACs of phi = 1..4 over phi = 0, beside 2^phi and the unrounded (alpha beta^2 gamma^2)^phi."""
    alpha, beta, gamma = triple
    command = [*NAS, "scale", "family", base, "--alpha", str(alpha), "--beta", str(beta), "--gamma", str(gamma),
               "--phi", "0..4", "--no-measure", "--output", f"{tmp}/family", "--storage", f"sqlite:///{tmp}/family.db",
               "--json"]
    if resolution:
        command += ["--resolution", str(resolution)]
    rows = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)[1:]
    return [{"phi": r["phi"], "resolution": r["resolution"], "params": r["params"], "macs": r["macs"],
             "ratio": r["macs_ratio"], "two_to_phi": r["expected_ratio"],
             "promised": (alpha * beta**2 * gamma**2) ** r["phi"]} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="efficientnet_b0", help="a paper network name or an architecture file")
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=None, help="the base's input size [default: its own, else 224]")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = str(Path(args.base).resolve()) if Path(args.base).is_file() else args.base
    command = [*NAS, "scale", "grid", base, "--step", str(args.step), "--tolerance",
               str(args.tolerance), "--epochs", str(args.epochs), "--json"]
    if args.resolution:
        command += ["--resolution", str(args.resolution)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = json.loads(subprocess.run(command, cwd=tmp, check=True, capture_output=True, text=True).stdout)
        wall_s = time.perf_counter() - start
        chosen = result["best_reward"]
        triple = (chosen["alpha"], chosen["beta"], chosen["gamma"])
        ratios = {"chosen": macs_ratios(base, triple, args.resolution, tmp),
                  "efficientnet": macs_ratios(base, PAPER, args.resolution, tmp)}
    figures = {
        "base": result["base"], "base_resolution": result["base_resolution"], "step": args.step,
        "tolerance": args.tolerance, "epochs": args.epochs, "wall_s": wall_s,
        "per_point_s": wall_s / len(result["points"]), "target_latency_ms": result["target_latency_ms"],
        "reward": result["reward"], "points": [{k: p[k] for k in POINT_KEYS} for p in result["points"]],
        "chosen": {k: chosen[k] for k in ("label", "alpha", "beta", "gamma", "accuracy", "latency_ms", "reward")},
        "best_accuracy": result["best_accuracy"]["label"],
        "macs_ratio": ratios,
    }
    path = save("scaling", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    console = Console(width=140)
    table = Table(title=f"grid of {result['base']} at phi = 1: {len(result['points'])} points, step {args.step:g}, "
                        f"{wall_s:.0f} s; T = {result['target_latency_ms']:.3g} ms")
    for column in ("alpha,beta,gamma", "res", "blocks", "params M", "MACs M", "proxy acc %", "latency ms", "reward"):
        table.add_column(column, justify="left" if column == "alpha,beta,gamma" else "right")
    for p in figures["points"]:
        done = p["accuracy"] is not None and p["reward"] is not None
        table.add_row(p["label"] + (" *" if p["label"] == chosen["label"] else ""), str(p["resolution"]), str(p["blocks"]),
                      f"{p['params'] / 1e6:.2f}", f"{p['macs'] / 1e6:.0f}", f"{100 * p['accuracy']:.1f}" if done else "-",
                      f"{p['latency_ms']:.2f}" if done else "-", f"{p['reward']:.4f}" if done else "-")
    console.print(table)
    console.print(f"chosen (best reward, *): alpha {triple[0]:g}, beta {triple[1]:g}, gamma {triple[2]:g}; "
                  f"best accuracy: {figures['best_accuracy']}")
    table = Table(title="MACs(phi) / MACs(0) against 2^phi: the chosen triple and the paper's 1.2, 1.1, 1.15")
    for column in ("phi", "chosen res", "chosen ratio", "paper res", "paper ratio", "2^phi"):
        table.add_column(column, justify="right")
    for mine, paper in zip(ratios["chosen"], ratios["efficientnet"], strict=True):
        table.add_row(str(mine["phi"]), str(mine["resolution"]), f"{mine['ratio']:.2f}", str(paper["resolution"]),
                      f"{paper['ratio']:.2f}", f"{mine['two_to_phi']:g}")
    console.print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
