"""A few training steps from a supernet's weights as an accuracy estimate (`--estimator
supernet:steps=N`), ranked against the estimators' long-training reference beside the same steps
from scratch and the plain read-off.

For each N in --steps: the reference's networks inside the supernet's space (the papers' seed
networks lie outside it) trained N steps from their inherited, BN-calibrated weights, and N steps
from timm's initialisation with the same recipe (`nas.proxy.train_steps`: AdamW, cosine, the
proxy's learning rate); Kendall tau and Spearman against the reference, signal-to-noise over two
seeds, and seconds per network. With --beside SPEC, also those estimators (`nas search
--estimator SPEC` on --beside-data: the search's default, `train`, on digits) on the same networks.
All rows take turns network by network (`rank_side_by_side`), so their seconds compare as one
run's. With --search N, then the wall time of an N-candidate `nas search --estimator
supernet:NAME,steps=S --latency lut` (S: --search-steps) in the supernet's folder, after the
rankings (never beside them).

    python bench/supernet_finetune.py --supernet DIR/supernets/NAME.safetensors [--storage URL]
                                      [--reference NAME] [--steps 10 20 40] [--batch-size 32]
                                      [--beside train ...] [--beside-data digits]
                                      [--search N --search-steps 20 --target-latency 20ms] [--results DIR] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import RESULTS, save
from supernet import timed_search

from nas.estimators.choose import make_estimator
from nas.estimators.ranking import Ranking, held, load_reference, rank_side_by_side
from nas.estimators.supernet import SupernetEstimator
from nas.proxy import ProxySettings, TuneSettings
from nas.refine.tune import Tuning
from storage import Store


def _row(start: str, steps: int | None, ranking: Ranking) -> dict:
    return {"start": start, "steps": steps, "kendall_tau": ranking.kendall_tau, "spearman": ranking.spearman,
            "snr": ranking.snr, "seconds_per_arch": ranking.seconds_per_arch,
            "networks": len(ranking.scores)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", type=Path, required=True, help="a finished `nas supernet train` checkpoint")
    parser.add_argument("--storage", default="sqlite:///bench/.estimators.db", help="database holding the reference")
    parser.add_argument("--reference", default=None, help="reference name [default: the only one in --storage]")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--batch-size", type=int, default=TuneSettings.batch_size)
    parser.add_argument("--beside", nargs="*", default=[], metavar="SPEC",
                        help="search estimators to rank beside the fine-tunes, e.g. train (the default search's)")
    parser.add_argument("--beside-data", default="digits", help="their data [default: the search's, digits]")
    parser.add_argument("--search", type=int, default=0, help="then time a search of this many candidates (0: none)")
    parser.add_argument("--search-steps", type=int, default=20, help="fine-tune steps of the timed search's estimator")
    parser.add_argument("--target-latency", default="20ms")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for supernet_finetune.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    read_off = SupernetEstimator(args.supernet)
    whole = load_reference(Store.open(args.storage), args.reference)
    reference = held(whole, read_off)
    makers = {("read-off", 0): lambda seed: read_off if seed == 0 else SupernetEstimator(args.supernet, seed=seed)}
    for steps in args.steps:
        tune = TuneSettings(steps, ProxySettings.lr, batch_size=args.batch_size)
        makers["inherited", steps] = lambda seed, tune=tune: SupernetEstimator(  # as make_estimator
            args.supernet, tune=replace(tune, seed=seed), seed=seed)
        makers["scratch", steps] = lambda seed, tune=tune: Tuning(read_off.data, replace(tune, seed=seed),
                                                                  read_off.state["resolution"])
    for spec in args.beside:
        makers[f"{spec} on {args.beside_data}", None] = lambda seed, spec=spec: make_estimator(
            spec, args.beside_data, seed, space=read_off.state["space"])
    labels = {key: key[0] if key[1] is None else f"{key[0]}-{key[1]}" for key in makers}
    done = itertools.count(1)
    networks = len(reference.accuracy) + len(reference.repeated)
    rankings = rank_side_by_side(reference, {labels[key]: make for key, make in makers.items()}, lambda: print(
        f"network {next(done)} of {networks} scored {len(makers)} ways", file=sys.stderr, flush=True))
    rows = [_row(*key, rankings[labels[key]]) for key in makers]
    search = None
    if args.search:
        spec = f"supernet:{args.supernet.stem},steps={args.search_steps},batch_size={args.batch_size}"
        search = {"estimator": spec, **timed_search(args.supernet.parent.parent, spec, read_off.state["settings"],
                                                    args.search, args.target_latency,
                                                    f"finetune-{args.search_steps}-{int(time.time())}")}
    figures = {"supernet": str(args.supernet), "supernet_settings": read_off.state["settings"],
               "data": read_off.data.name, "resolution": read_off.state["resolution"], "batch_size": args.batch_size,
               "lr": ProxySettings.lr, "reference": reference.name,
               "reference_self_tau": whole.self_tau, "reference_repeated": len(whole.repeated),
               "rows": rows, "search": search}
    path = save("supernet_finetune", figures, args.results)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return
    table = Table(title=f"ranking {rows[0]['networks']} networks of {reference.name} (its own seeds agree with "
                        f"tau {whole.self_tau or float('nan'):.2f} on {len(whole.repeated)} networks)")
    for column in ("start", "steps", "Kendall tau", "Spearman", "SNR", "s / network"):
        table.add_column(column, justify="left" if column == "start" else "right")
    for row in rows:
        table.add_row(row["start"], "-" if row["steps"] is None else str(row["steps"]), f"{row['kendall_tau']:.2f}", f"{row['spearman']:.2f}",
                      "-" if row["snr"] is None else f"{row['snr']:.1f}", f"{row['seconds_per_arch']:.2f}")
    Console().print(table)
    if search is not None:
        print(f"a {search['trials']}-candidate search with {search['estimator']}: {search['wall_s'] / 60:.1f} min, "
              f"{3600 / search['seconds_per_trial']:.0f} candidates an hour")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
