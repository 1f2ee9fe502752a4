"""How far from the sandwich's two ends does a trained supernet's read-off hold?

The sandwich rule trains the largest and the smallest network every step and the networks between
them only by its random draws. This bench starts at each end and changes one choice at a time, to
each of its other options, first in one stage and then in every stage, and reads every network off
the supernet as ``--estimator supernet`` does (inherited weights, BatchNorm calibration); random
networks of the space, as a search samples them, for comparison. A choice whose one-stage change
already falls to chance is one whose paths the training has not learned to share.

    python bench/supernet_neighbours.py --supernet PATH [--stage 3] [--random 12] [--results DIR] [--json]

Accuracies only, no timing: it may run beside other work.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import optuna
import torch
from rich.console import Console
from rich.table import Table

from _common import RESULTS, save

from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.supernet import calibration_batches, end_params, open_supernet, random_genotype, subnet_accuracy
from search_spaces import FactorizedSpace

ENDS = ("largest", "smallest")


@dataclass(frozen=True)
class Neighbour:
    """A network one choice away from an end: ``choice`` set to ``option`` in ``stages`` (one
    stage, or every stage that offers the option)."""

    end: str
    choice: str
    option: object
    every_stage: bool
    stages: tuple[int, ...]
    params: dict[str, object]


def neighbours(space: FactorizedSpace, end: str, stage: int) -> list[Neighbour]:
    """From ``end``, every other option of every choice of ``stage``: in that stage alone, and in
    every stage that offers the option and does not already have it."""
    base = end_params(space, end)
    found = []
    for choice, options in space.choices(stage).items():
        for option in options:
            if option == base[f"s{stage}_{choice}"]:
                continue
            for every_stage, stages in ((False, (stage,)), (True, tuple(range(len(space.skeleton))))):
                changed = tuple(i for i in stages if option in space.choices(i)[choice]
                                and base[f"s{i}_{choice}"] != option)
                params = {**base, **{f"s{i}_{choice}": option for i in changed}}
                found.append(Neighbour(end, choice, option, every_stage, changed, params))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", type=Path, required=True, help="a finished `nas supernet train` checkpoint")
    parser.add_argument("--stage", type=int, default=3, help="the stage changed alone (0-based; the middle one)")
    parser.add_argument("--random", type=int, default=12, help="random networks of the space to read off")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for supernet_neighbours.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        supernet, state = open_supernet(args.supernet)
    except (UsageError, OSError) as err:
        raise SystemExit(f"--supernet: {err}") from None
    space = supernet.space
    if not 0 <= args.stage < len(space.skeleton):
        raise SystemExit(f"--stage must be between 0 and {len(space.skeleton) - 1}")
    data = load_proxy_data(state["dataset"], state["resolution"])
    calibration = calibration_batches(data, state["settings"]["batch_size"])

    def read_off(params: dict[str, object]) -> float:
        return subnet_accuracy(supernet, space.sample(optuna.trial.FixedTrial(params)), data, calibration)

    ends = {end: read_off(end_params(space, end)) for end in ENDS}
    rows = []
    for end in ENDS:
        for n in neighbours(space, end, args.stage):
            rows.append({"end": n.end, "choice": n.choice, "option": n.option, "every_stage": n.every_stage,
                         "stages": list(n.stages),
                         "accuracy": read_off(n.params)})
            print(f"{end} {n.choice}={n.option} in stages {n.stages}: {rows[-1]['accuracy']:.3f}",
                  file=sys.stderr, flush=True)
    rng = random.Random(0)
    randoms = [subnet_accuracy(supernet, random_genotype(space, rng), data, calibration) for _ in range(args.random)]
    figures = {"supernet": str(args.supernet), "space": space.name, "data": data.name, "resolution": state["resolution"],
               "supernet_settings": state["settings"], "stage": args.stage, "ends": ends, "neighbours": rows,
               "random": {"networks": len(randoms), "mean": statistics.fmean(randoms), "min": min(randoms),
                          "max": max(randoms)} if randoms else None,
               "chance": 1 / data.num_classes}
    path = save("supernet_neighbours", figures, args.results)
    if args.json:
        print(json.dumps(figures, default=str))
        return
    print_table(figures)
    print(f"saved {path}")


def print_table(figures: dict) -> None:
    ends = figures["ends"]
    table = Table(title=f"{figures['space']} supernet read-off, one choice changed from each end "
                        f"(largest {ends['largest']:.1%}, smallest {ends['smallest']:.1%}, "
                        f"chance {figures['chance']:.0%})")
    table.add_column("choice -> option")
    for end in ENDS:
        table.add_column(f"{end}: stage {figures['stage']}", justify="right")
        table.add_column(f"{end}: every stage", justify="right")
    cells: dict[tuple[str, str], dict[tuple[str, bool], str]] = {}
    for row in figures["neighbours"]:
        key = (row["choice"], str(row["option"]))
        cells.setdefault(key, {})[(row["end"], row["every_stage"])] = f"{row['accuracy']:.1%}"
    for (choice, option), by in cells.items():
        table.add_row(f"{choice} -> {option}", *(by.get((end, every), "-") for end in ENDS for every in (False, True)))
    Console().print(table)
    if figures["random"]:
        r = figures["random"]
        print(f"{r['networks']} random networks: mean {r['mean']:.1%} (min {r['min']:.1%}, max {r['max']:.1%})")


if __name__ == "__main__":
    main()
