"""How much an estimator's Kendall tau against the reference moves with its own seed alone.

`nas estimators rank` ranks with seed 0 (and seed 1 on the reference's repeated networks, for the
signal-to-noise ratio); one tau is one sample. This ranks the reference with each of --seeds as
seed 0 (the next seed on the repeated networks) and reports each seed's tau, Spearman and SNR,
and the taus' mean and spread: the error bar of any one ranking's figure. Several estimators are
ranked on the same seeds, one after the other. Its timings are not used.

    python bench/estimator_seeds.py [--estimator SPEC ...] [--data digits] [--seeds 0 1 2 3]
                                    [--storage URL] [--reference NAME] [--results DIR] [--json]
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

from _common import RESULTS, save

from nas.estimators.choose import make_estimator
from nas.estimators.ranking import Reference, load_reference, rank_estimator
from storage import Store


def seed_spread(whole: Reference, spec: str, data: str, seeds: list[int]) -> dict:
    """``spec``'s tau, Spearman and SNR against ``whole`` with each of ``seeds``, and the taus' spread."""
    space = whole.settings.get("space", "mbconv")
    rows = []
    for seed in seeds:
        ranking = rank_estimator(whole, spec, lambda offset, seed=seed: make_estimator(spec, data, seed + offset, space=space))
        rows.append({"seed": seed, "networks": len(ranking.scores), "kendall_tau": ranking.kendall_tau,
                     "spearman": ranking.spearman, "snr": ranking.snr})
        print(f"{spec}, seed {seed}: tau {ranking.kendall_tau:.3f}", file=sys.stderr, flush=True)
    taus = [row["kendall_tau"] for row in rows]
    return {"estimator": spec, "rows": rows, "mean_kendall_tau": statistics.fmean(taus),
            "stdev_kendall_tau": statistics.stdev(taus) if len(taus) > 1 else None,
            "min_kendall_tau": min(taus), "max_kendall_tau": max(taus)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", nargs="+", default=["train:epochs=1"])
    parser.add_argument("--data", default="digits", help="the estimators' data (their search-time data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--storage", default="sqlite:///bench/.estimators.db", help="database holding the reference")
    parser.add_argument("--reference", default=None, help="reference name [default: the only one in --storage]")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for estimator_seeds.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    whole = load_reference(Store.open(args.storage), args.reference)
    figures = {"data": args.data, "reference": whole.name, "reference_self_tau": whole.self_tau,
               "estimators": [seed_spread(whole, spec, args.data, args.seeds) for spec in args.estimator]}
    path = save("estimator_seeds", figures, args.results)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for spread in figures["estimators"]:
        table = Table(title=f"{spread['estimator']} on {args.data} against {whole.name}, by seed")
        for column in ("seed", "networks", "Kendall tau", "Spearman", "SNR"):
            table.add_column(column, justify="right")
        for row in spread["rows"]:
            table.add_row(str(row["seed"]), str(row["networks"]), f"{row['kendall_tau']:.3f}", f"{row['spearman']:.3f}",
                          "-" if row["snr"] is None else f"{row['snr']:.1f}")
        Console().print(table)
        deviation = "" if spread["stdev_kendall_tau"] is None else f" +- {spread['stdev_kendall_tau']:.3f}"
        print(f"{spread['estimator']}: mean tau {spread['mean_kendall_tau']:.3f}{deviation} "
              f"(min {spread['min_kendall_tau']:.3f}, max {spread['max_kendall_tau']:.3f})")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
