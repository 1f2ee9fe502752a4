"""How much an estimator's Kendall tau against the reference moves with its own seed alone.

`nas estimators rank` ranks with seed 0 (and seed 1 on the reference's repeated networks, for the
signal-to-noise ratio); one tau is one sample. This ranks the reference with each of --seeds as
seed 0 (the next seed on the repeated networks) and reports each seed's tau, Spearman and SNR,
and the taus' mean and spread: the error bar of any one ranking's figure. Its timings are not used.

    python bench/estimator_seeds.py [--estimator train:epochs=1] [--data digits] [--seeds 0 1 2 3]
                                    [--storage URL] [--reference NAME] [--json]
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

from _common import save

from nas.estimators.choose import make_estimator
from nas.estimators.ranking import load_reference, rank_estimator
from storage import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="train:epochs=1")
    parser.add_argument("--data", default="digits", help="the estimator's data (its search-time data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--storage", default="sqlite:///bench/.estimators.db", help="database holding the reference")
    parser.add_argument("--reference", default=None, help="reference name [default: the only one in --storage]")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    whole = load_reference(Store.open(args.storage), args.reference)
    space = whole.settings.get("space", "mbconv")
    rows = []
    for seed in args.seeds:
        ranking = rank_estimator(whole, args.estimator,
                                 lambda offset, seed=seed: make_estimator(args.estimator, args.data, seed + offset, space=space))
        rows.append({"seed": seed, "networks": len(ranking.scores), "kendall_tau": ranking.kendall_tau,
                     "spearman": ranking.spearman, "snr": ranking.snr})
        print(f"seed {seed}: tau {ranking.kendall_tau:.3f}", file=sys.stderr, flush=True)
    taus = [row["kendall_tau"] for row in rows]
    figures = {"estimator": args.estimator, "data": args.data, "reference": whole.name,
               "reference_self_tau": whole.self_tau, "rows": rows, "mean_kendall_tau": statistics.fmean(taus),
               "stdev_kendall_tau": statistics.stdev(taus) if len(taus) > 1 else None,
               "min_kendall_tau": min(taus), "max_kendall_tau": max(taus)}
    path = save("estimator_seeds", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"{args.estimator} on {args.data} against {whole.name}, by seed")
    for column in ("seed", "networks", "Kendall tau", "Spearman", "SNR"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["seed"]), str(row["networks"]), f"{row['kendall_tau']:.3f}", f"{row['spearman']:.3f}",
                      "-" if row["snr"] is None else f"{row['snr']:.1f}")
    Console().print(table)
    spread = "" if figures["stdev_kendall_tau"] is None else f" +- {figures['stdev_kendall_tau']:.3f}"
    print(f"mean tau {figures['mean_kendall_tau']:.3f}{spread} (min {min(taus):.3f}, max {max(taus):.3f}); saved {path}")


if __name__ == "__main__":
    main()
