"""How much of a supernet's read-off is the networks, and how much the images it happens to use?

On the reference's networks inside the supernet's space: Kendall tau between two disjoint draws of
calibration images (--calibration sizes: BatchNorm statistics re-estimated on that many training
images), between the two halves of the validation split, and of each read-off against every
--reference; also scored by validation loss instead of top-1. Nothing is timed.

    python bench/supernet_readoff.py --supernet DIR/supernets/NAME.safetensors --reference NAME [--reference NAME ...]
                                     [--calibration 256 1024] [--storage URL] [--results DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import kendalltau

from _common import RESULTS, save

from nas.estimators.ranking import held, load_reference
from nas.estimators.supernet import SupernetEstimator
from search_spaces import Genotype
from storage import Store

DRAWS = ("a", "b")


def _scores(estimator: SupernetEstimator, genotype: Genotype, calibration: list[torch.Tensor]) -> dict[str, float]:
    """Top-1 on the whole validation split, on each half (even and odd images), and minus the mean loss."""
    supernet, data = estimator.supernet, estimator.data
    buffers = supernet.calibrate(genotype, calibration)
    with torch.inference_mode():
        logits = torch.cat([supernet.forward(genotype, x, train=False, buffers=buffers) for x in data.x_val.split(250)])
    right = (logits.argmax(1) == data.y_val).float()
    loss = torch.nn.functional.cross_entropy(logits, data.y_val)
    return {"top1": right.mean().item(), "top1_even": right[::2].mean().item(), "top1_odd": right[1::2].mean().item(),
            "neg_loss": -loss.item()}


def _tau(a: dict[str, float], b: dict[str, float]) -> float:
    labels = sorted(a.keys() & b.keys())
    return float(kendalltau([a[k] for k in labels], [b[k] for k in labels]).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", type=Path, required=True, help="a finished `nas supernet train` checkpoint")
    parser.add_argument("--reference", nargs="+", required=True, help="references to rank against (the first picks the networks)")
    parser.add_argument("--calibration", type=int, nargs="+", default=[256, 1024], help="calibration images per draw")
    parser.add_argument("--storage", default="sqlite:///bench/.estimators.db", help="database holding the references")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for supernet_readoff.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    estimator = SupernetEstimator(args.supernet)
    store = Store.open(args.storage)
    references = [held(load_reference(store, name), estimator) for name in args.reference]
    networks = references[0].networks
    x_train = estimator.data.x_train
    if 2 * max(args.calibration) > len(x_train):
        parser.error(f"two disjoint draws of {max(args.calibration)} need more than {len(x_train)} training images")
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))
    rows = []
    for size in args.calibration:
        draws = {name: list(x_train[order[i * size:(i + 1) * size]].split(estimator.batch_size)) for i, name in enumerate(DRAWS)}
        scores = {name: {label: _scores(estimator, g, draw) for label, g in networks.items()} for name, draw in draws.items()}
        first = scores[DRAWS[0]]
        top1 = {name: {k: v["top1"] for k, v in s.items()} for name, s in scores.items()}
        rows.append({
            "calibration_images": size, "networks": len(networks),
            "draw_vs_draw_tau": _tau(*top1.values()),
            "half_vs_half_tau": _tau({k: v["top1_even"] for k, v in first.items()}, {k: v["top1_odd"] for k, v in first.items()}),
            "top1_range": [min(top1[DRAWS[0]].values()), max(top1[DRAWS[0]].values())],
            "against": {ref.name: {"top1": [_tau(top1[name], ref.accuracy) for name in DRAWS],
                                   "neg_loss": [_tau({k: v["neg_loss"] for k, v in scores[name].items()}, ref.accuracy)
                                                for name in DRAWS]} for ref in references},
        })
        print(f"{size} calibration images: draws agree at tau {rows[-1]['draw_vs_draw_tau']:.2f}", file=sys.stderr, flush=True)
    between = {f"{a.name} vs {b.name}": _tau(a.accuracy, b.accuracy) for i, a in enumerate(references) for b in references[i + 1:]}
    figures = {"supernet": str(args.supernet), "space": estimator.state["space"], "data": estimator.data.name,
               "validation_images": len(estimator.data.x_val), "references": args.reference,
               "references_agree": between, "rows": rows}
    path = save("supernet_readoff", figures, args.results)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"read-off of {len(networks)} networks ({estimator.state['space']}): Kendall tau")
    for column in ("calibration images", "draw vs draw", "half vs half", *(f"vs {r} (top-1; loss)" for r in args.reference)):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["calibration_images"]), f"{row['draw_vs_draw_tau']:.2f}", f"{row['half_vs_half_tau']:.2f}",
                      *(" / ".join(f"{t:.2f}" for t in row["against"][r]["top1"]) + "; "
                        + " / ".join(f"{t:.2f}" for t in row["against"][r]["neg_loss"]) for r in args.reference))
    Console().print(table)
    for pair, tau in between.items():
        print(f"{pair}: tau {tau:.2f}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
