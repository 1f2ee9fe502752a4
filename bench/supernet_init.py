"""Are a supernet's weights a better start for the final training? (`nas train NET --init supernet`)

Random networks of the supernet's space (a fixed draw) re-trained with the final recipe of
`bench/search_quality.py` (`nas train --epochs 12 --resolution 64` on digits) twice: from timm's
initialisation, and from their inherited, BN-calibrated supernet weights (`--init`, which also
picks the fine-tuning learning rate and schedule, as `nas train` does), each with every --seeds.
Prints and saves each network's accuracies and the mean paired difference.

    python bench/supernet_init.py --supernet DIR/supernets/NAME.safetensors [--networks 3] [--seeds 0 1]
                                  [--epochs 12] [--resolution 64] [--data digits] [--results DIR] [--json]

Accuracy only (nothing is timed); one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
from rich.console import Console
from rich.table import Table

from _common import RESULTS, save

from nas.architecture import Architecture
from nas.checkpoint import read_state
from nas.latency.layers import random_networks, space_named
from nas.recipe import TrainSettings
from nas.train import architecture_model, train

STARTS = ("scratch", "supernet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", type=Path, required=True, help="a finished `nas supernet train` checkpoint")
    parser.add_argument("--networks", type=int, default=3, help="random networks of the supernet's space")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds of each network and start")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for supernet_init.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = read_state(args.supernet)["space"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch_dir:
        for index, genotype in enumerate(random_networks(space_named(space), args.networks, args.sample_seed)):
            spec = architecture_model(Architecture(f"{space}-random-{index}", genotype))
            row = {"network": spec.name, "arch_key": genotype.key, "accuracy": {}}
            for start in STARTS:
                for seed in args.seeds:
                    settings = TrainSettings(data=args.data, epochs=args.epochs, resolution=args.resolution, seed=seed,
                                             init=str(args.supernet) if start == "supernet" else None)
                    result = train(spec, settings, Path(scratch_dir) / f"{index}-{start}-{seed}")
                    row["accuracy"].setdefault(start, []).append(result.accuracy)
                    print(f"{spec.name} from {start}, seed {seed}: {100 * result.accuracy:.1f}%", file=sys.stderr, flush=True)
            row["difference"] = statistics.fmean(row["accuracy"]["supernet"]) - statistics.fmean(row["accuracy"]["scratch"])
            rows.append(row)
    means = {start: statistics.fmean(a for r in rows for a in r["accuracy"][start]) for start in STARTS}
    figures = {"supernet": str(args.supernet), "space": space, "data": args.data, "epochs": args.epochs,
               "resolution": args.resolution, "seeds": args.seeds, "threads": 1, "networks": rows, "mean_accuracy": means,
               "mean_difference": statistics.fmean(r["difference"] for r in rows),
               "networks_better_from_supernet": sum(r["difference"] > 0 for r in rows)}
    path = save("supernet_init", figures, args.results)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return
    table = Table(title=f"final recipe ({args.epochs} epochs, {args.resolution} px, {args.data}), seeds {args.seeds}")
    for column in ("network", "from scratch", "from the supernet", "difference"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for row in rows:
        shown = {s: " / ".join(f"{100 * a:.1f}" for a in row["accuracy"][s]) for s in STARTS}
        table.add_row(row["network"], shown["scratch"], shown["supernet"], f"{100 * row['difference']:+.1f}")
    table.add_row("mean", f"{100 * means['scratch']:.1f}", f"{100 * means['supernet']:.1f}",
                  f"{100 * figures['mean_difference']:+.1f}")
    Console().print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
