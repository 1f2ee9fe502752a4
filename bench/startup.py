"""How long a nas process that computes takes to import what it computes with (torch, timm,
Optuna, SQLAlchemy: `nas.search` and the measuring child's module), with CPython's collector
threshold and with the one `import nas` sets (``nas.YOUNG_THRESHOLD``). Every such process pays it
once: a command that trains or times, each of its worker processes, each measuring child.

Fresh interpreters, one at a time, the two settings taking turns in each round; medians of the
rounds, wall time and the CPU time the process used (user + system).

    python bench/startup.py [--rounds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save

import nas

# `import nas` sets its threshold; the first setting puts CPython's back before anything heavy loads
IMPORTS = "import gc, nas; {reset}import nas.search, nas.latency.isolated"
SETTINGS = {
    f"CPython's ({nas.CPYTHON_YOUNG_THRESHOLD})": f"gc.set_threshold({nas.CPYTHON_YOUNG_THRESHOLD}, *gc.get_threshold()[1:]); ",
    f"nas's ({nas.YOUNG_THRESHOLD})": "",
}


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_once(reset: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a fresh interpreter importing what a computing nas process does."""
    cpu, start = _children_cpu_s(), time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS.format(reset=reset)], check=True)
    return time.perf_counter() - start, _children_cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for reset in SETTINGS.values():  # one untimed run each: files into the page cache for both alike
        import_once(reset)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, reset in SETTINGS.items():
            runs[name].append(import_once(reset))
    rows = [{"threshold": name, "median_s": statistics.median(w for w, _ in measured), "runs_s": [w for w, _ in measured],
             "median_cpu_s": statistics.median(c for _, c in measured), "runs_cpu_s": [c for _, c in measured]}
            for name, measured in runs.items()]
    default, tuned = rows
    figures = {"rounds": args.rounds, "imports": IMPORTS.format(reset=""), "settings": rows,
               "saved_s": default["median_s"] - tuned["median_s"], "ratio": tuned["median_s"] / default["median_s"],
               "cpu_ratio": tuned["median_cpu_s"] / default["median_cpu_s"]}
    path = save("startup", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"importing what a computing nas process imports, median of {args.rounds} rounds")
    for column in ("collector threshold", "wall s", "min s", "max s", "CPU s"):
        table.add_column(column, justify="left" if column == "collector threshold" else "right")
    for r in rows:
        table.add_row(r["threshold"], f"{r['median_s']:.2f}", f"{min(r['runs_s']):.2f}", f"{max(r['runs_s']):.2f}",
                      f"{r['median_cpu_s']:.2f}")
    Console(width=120).print(table)
    print(f"nas's threshold: {figures['ratio']:.2f}x the wall time ({figures['saved_s']:.2f} s sooner), "
          f"{figures['cpu_ratio']:.2f}x the CPU time")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
