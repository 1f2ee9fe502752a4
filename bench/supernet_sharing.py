"""Which choices of a space can share weights on a CPU budget: the measurements behind README's
"Why it ranks poorly" (what a trained supernet's weights are worth as a start:
``bench/supernet_finetune.py``).

1. Per choice: a fresh supernet trained from scratch for --steps steps of two networks a step, only
   that choice drawn at random per stage and every other one fixed at the space's skeleton network
   (MobileNetV2 on ``mbconv``); the training loss over the last 20 steps says how well paths that
   differ in that choice learn on the same weights (chance: ln 10 = 2.30 on MNIST).
2. Pools of fixed networks trained in turn on one supernet: how learning slows as more distinct
   paths share the weights.

    python bench/supernet_sharing.py [--space mbconv] [--data mnist] [--steps 120] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from _common import save

from nas.data import ProxyData, load_proxy_data
from nas.supernet import Supernet, random_genotype, zero_classifier
from search_spaces import FactorizedSpace, get_space

BATCH = 64
RESOLUTION = 16  # the search's proxy resolution, as the supernet's
LR = 3e-3
TAIL = 20  # steps whose mean loss is reported
CHOICES = ("none", "act", "se", "layers", "width", "kernel", "skip", "op")
OP_SUBSETS = (("mb3", "mb6"), ("mb1", "mb3", "mb6"), ("ds", "mb3"))
POOLS = (1, 2, 8)


class _OneChoiceDrawn:
    """A ``Suggester``: ``choice`` drawn from ``options`` (all when None), the rest from ``fixed``."""

    def __init__(self, fixed: dict[str, object], choice: str, rng: random.Random,
                 options: tuple | None = None) -> None:
        self.fixed, self.choice, self.rng, self.options = fixed, choice, rng, options

    def suggest_categorical(self, name: str, choices: list) -> object:
        if name.split("_", 1)[1] == self.choice:
            return self.rng.choice(list(self.options or choices))
        return self.fixed[name]


def _fresh(space: FactorizedSpace, data: ProxyData) -> tuple[Supernet, torch.optim.Optimizer]:
    """A supernet at timm's initialisation with the training's zeroed classifier, and AdamW."""
    torch.manual_seed(0)
    supernet = Supernet(space, num_classes=data.num_classes, in_chans=data.in_chans, resolution=RESOLUTION)
    zero_classifier(supernet)
    return supernet, torch.optim.AdamW(list(supernet.params.values()), lr=LR, weight_decay=0.05)


def _train(space: FactorizedSpace, data: ProxyData, draw, steps: int) -> float:
    """Mean training loss over the last ``TAIL`` steps of two networks a step from ``draw(k)``."""
    supernet, optimizer = _fresh(space, data)
    batches = torch.Generator().manual_seed(0)
    losses = []
    for step in range(steps):
        picked = torch.randint(0, len(data.x_train), (BATCH,), generator=batches)
        optimizer.zero_grad(set_to_none=True)
        for k in range(2):
            loss = F.cross_entropy(supernet.forward(draw(2 * step + k), data.x_train[picked], train=True),
                                   data.y_train[picked])
            loss.backward()
            losses.append(loss.item())
        optimizer.step()
    tail = losses[-2 * TAIL:]
    return sum(tail) / len(tail)


def per_choice(space: FactorizedSpace, data: ProxyData, steps: int) -> list[dict]:
    fixed = space.reference_params()
    if fixed is None:
        raise SystemExit(f"space {space.name} has no skeleton network to fix the other choices at")
    rows = []
    cases = [(choice, None) for choice in CHOICES] + [("op", subset) for subset in OP_SUBSETS]
    for choice, options in cases:
        if options is not None and not set(options) <= set(space.ops):
            continue
        drawer = _OneChoiceDrawn(fixed, choice, random.Random(0), options)
        start = time.perf_counter()
        loss = _train(space, data, lambda _k, drawer=drawer: space.sample(drawer), steps)
        rows.append({"drawn": choice, "options": list(options) if options else None, "final_loss": loss,
                     "seconds": time.perf_counter() - start})
        print(f"{choice} {options or ''}: {loss:.3f}", file=sys.stderr, flush=True)
    return rows


def pools(space: FactorizedSpace, data: ProxyData, steps: int) -> list[dict]:
    """Networks differing in every choice, a fixed pool of them trained in turn."""
    rows = []
    for size in POOLS:
        rng = random.Random(size)
        pool = [random_genotype(space, rng) for _ in range(size)]
        loss = _train(space, data, lambda k, pool=pool: pool[k % len(pool)], steps)
        rows.append({"networks": size, "final_loss": loss})
        print(f"pool of {size}: {loss:.3f}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space, data = get_space(args.space), load_proxy_data(args.data, RESOLUTION)
    figures = {"space": space.name, "data": data.name, "resolution": RESOLUTION, "steps": args.steps, "batch_size": BATCH,
               "lr": LR, "chance_loss": math.log(data.num_classes), "per_choice": per_choice(space, data, args.steps),
               "pools": pools(space, data, args.steps)}
    path = save("supernet_sharing", figures)
    if args.json:
        print(json.dumps(figures))
        return
    table = Table(title=f"{space.name}: two networks a step for {args.steps} steps, final training loss "
                        f"(chance {figures['chance_loss']:.2f})")
    table.add_column("drawn per stage")
    table.add_column("loss", justify="right")
    for row in figures["per_choice"]:
        table.add_row(row["drawn"] + (f" in {'/'.join(row['options'])}" if row["options"] else ""),
                      f"{row['final_loss']:.2f}")
    for row in figures["pools"]:
        table.add_row(f"a pool of {row['networks']} random networks", f"{row['final_loss']:.2f}")
    Console().print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
