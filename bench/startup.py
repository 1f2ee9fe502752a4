"""How long a nas process that computes takes to import what it computes with (torch, timm,
Optuna, SQLAlchemy: `nas.search`, `nas.workers` and the measuring child's module). Every such
process pays it once: a command that trains or times, each of its worker processes, each measuring
child. Three ways: as before 2026-12-01 (CPython's collector threshold; scikit-learn and
optuna-dashboard imported with the modules that use them), CPython's threshold only, and as now
(the threshold `import nas` sets, ``nas.YOUNG_THRESHOLD``).

Fresh interpreters, one at a time, the three ways taking turns in each round; medians of the
rounds, wall time and the CPU time the process used (user + system).

    python bench/startup.py [--rounds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import run_once, save

import nas

# `import nas` sets its threshold; RESET puts CPython's back before anything heavy loads
IMPORTS = "import gc, nas; {before}import nas.search, nas.workers, nas.latency.isolated"
RESET = f"gc.set_threshold({nas.CPYTHON_YOUNG_THRESHOLD}, *gc.get_threshold()[1:]); "
EAGER = "import sklearn.linear_model, sklearn.model_selection, optuna_dashboard; "  # what those modules imported before
WAYS = {
    f"before: CPython's threshold ({nas.CPYTHON_YOUNG_THRESHOLD}), eager imports": RESET + EAGER,
    f"CPython's threshold ({nas.CPYTHON_YOUNG_THRESHOLD})": RESET,
    f"now: nas's threshold ({nas.YOUNG_THRESHOLD})": "",
}


def import_once(before: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a fresh interpreter importing what a computing nas process does."""
    return run_once([sys.executable, "-c", IMPORTS.format(before=before)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for before in WAYS.values():  # one untimed run each: files into the page cache for every way alike
        import_once(before)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in WAYS}
    for _ in range(args.rounds):
        for name, before in WAYS.items():
            runs[name].append(import_once(before))
    rows = [{"way": name, "median_s": statistics.median(w for w, _ in measured), "runs_s": [w for w, _ in measured],
             "median_cpu_s": statistics.median(c for _, c in measured), "runs_cpu_s": [c for _, c in measured]}
            for name, measured in runs.items()]
    old, _, now = rows
    figures = {"rounds": args.rounds, "imports": IMPORTS.format(before=""), "ways": rows,
               "saved_s": old["median_s"] - now["median_s"], "ratio": now["median_s"] / old["median_s"],
               "cpu_ratio": now["median_cpu_s"] / old["median_cpu_s"]}
    path = save("startup", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"importing what a computing nas process imports, median of {args.rounds} rounds")
    for column in ("way", "wall s", "min s", "max s", "CPU s"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for r in rows:
        table.add_row(r["way"], f"{r['median_s']:.2f}", f"{min(r['runs_s']):.2f}", f"{max(r['runs_s']):.2f}",
                      f"{r['median_cpu_s']:.2f}")
    Console(width=120).print(table)
    print(f"now: {figures['ratio']:.2f}x the wall time of before ({figures['saved_s']:.2f} s sooner), "
          f"{figures['cpu_ratio']:.2f}x the CPU time")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
