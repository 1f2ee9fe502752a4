"""Can a final recipe tell the papers' networks apart beyond its own seed-to-seed noise?

`bench/search_quality.py` judges a search by re-training what it found with one final recipe;
where that recipe moves a network by as much as networks differ, no search can be shown better
than another or than the papers' networks. This bench trains the papers' networks (and the
MobileNets' width variants) with each recipe on ``--seeds`` seeds and reports, per recipe: the
spread of accuracy between networks, the spread between seeds of one network, their ratio (SNR),
the recipe's agreement with itself (Kendall tau between two seeds' orders), how many seeds a
network would need for a one-point difference to stand at two standard deviations, and seconds a
training.

    python bench/final_recipe.py [--recipe digits:64:12 mnist:32:8] [--seeds 2] [--workdir DIR] [--json]

A recipe is DATA:RESOLUTION:EPOCHS (`nas baselines --data --resolution --epochs`). Each recipe
trains in its own sub-folder of ``--workdir`` with the very steps `bench/search_quality.py` takes,
so `search_quality.py --final-data ... --baselines-from DIR/RECIPE` judges searches against these
trainings; the same command resumes after an interruption.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table
from scipy.stats import kendalltau

from _common import save
from search_quality import PAPERS, WIDTH_VARIANTS, Steps, baseline_step, final_recipe


@dataclass(frozen=True)
class Recipe:
    """A final recipe: what `nas baselines --data --resolution --epochs` gets (its defaults otherwise)."""

    data: str
    resolution: int
    epochs: int

    @classmethod
    def parse(cls, text: str) -> Recipe:
        try:
            data, resolution, epochs = text.rsplit(":", 2)
            return cls(data, int(resolution), int(epochs))
        except ValueError:
            raise SystemExit(f"--recipe {text!r}: expected DATA:RESOLUTION:EPOCHS, e.g. mnist:32:8") from None

    @property
    def label(self) -> str:
        return f"{Path(self.data).name}-{self.resolution}px-{self.epochs}ep"

    @property
    def flags(self) -> tuple[str, ...]:
        return final_recipe(self.data, self.resolution, self.epochs)


def agreement(accuracies: dict[str, list[float]]) -> dict:
    """How well one recipe separates networks: ``accuracies`` maps a network to its accuracy on
    seeds 0..S-1 (S >= 2)."""
    means = {name: statistics.fmean(a) for name, a in accuracies.items()}
    seeds = len(next(iter(accuracies.values())))
    between = statistics.stdev(means.values())
    within = math.sqrt(statistics.fmean(statistics.variance(a) for a in accuracies.values()))  # pooled seed std
    taus = [kendalltau([a[i] for a in accuracies.values()], [a[j] for a in accuracies.values()]).statistic
            for i, j in itertools.combinations(range(seeds), 2)]
    return {
        "networks": len(accuracies), "seeds": seeds,
        "mean_accuracy": statistics.fmean(means.values()),
        "between_networks_std": between, "seed_std": within, "snr": between / within if within else math.inf,
        "self_kendall_tau": statistics.fmean(float(t) for t in taus),
        "mean_seed_difference_pts": 100 * statistics.fmean(abs(a[i] - a[j]) for a in accuracies.values()
                                                           for i, j in itertools.combinations(range(seeds), 2)),
        # two networks' means over n seeds differ by noise of std seed_std * sqrt(2 / n): the n at which
        # one point is two of those stds, the seeds a one-point claim (issue 15's target) needs
        "seeds_for_one_point": math.ceil(round(8 * (100 * within) ** 2, 6)),  # round: no 12.000000001 -> 13
    }


def train_recipe(recipe: Recipe, networks: tuple[str, ...], seeds: int, workdir: Path, console: Console) -> dict:
    """Every network on every seed with ``recipe`` (kept steps are read back); the recipe's figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    steps = Steps(workdir)
    accuracies: dict[str, list[float]] = {}
    wall: list[float] = []
    for seed in range(seeds):  # seed by seed: an interrupted run already holds whole orders to compare
        for name in networks:
            console.print(f"{recipe.label}: {name} seed {seed}")
            training = baseline_step(recipe.flags, name, seed)
            (row,) = steps.train(training, workdir)
            accuracies.setdefault(name, []).append(row["accuracy"])
            wall.append(steps.wall_s(training.key))
    return {"recipe": recipe.label, "flags": list(recipe.flags), "workdir": str(workdir),
            "seconds_per_training": statistics.median(wall),
            **agreement(accuracies), "accuracies": accuracies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", nargs="+", type=Recipe.parse,
                        default=[Recipe("digits", 64, 12), Recipe("mnist", 32, 8)],
                        help="DATA:RESOLUTION:EPOCHS [default: digits:64:12 (search_quality.py's) mnist:32:8]")
    parser.add_argument("--networks", help="comma-separated `nas baselines` names [default: search_quality.py's]")
    parser.add_argument("--seeds", type=int, default=2, help="trainings of each network (>= 2)")
    parser.add_argument("--workdir", type=Path, default=Path("final-recipe"), help="keep every training here; "
                                                                                   "the same command resumes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.seeds < 2:
        raise SystemExit(f"--seeds must be >= 2 (the noise is measured between seeds), got {args.seeds}")
    networks = tuple(args.networks.split(",")) if args.networks else PAPERS + WIDTH_VARIANTS
    console = Console(stderr=True)
    recipes = [train_recipe(r, networks, args.seeds, args.workdir / r.label, console) for r in args.recipe]
    path = save("final_recipe", {"networks": list(networks), "recipes": recipes})
    if args.json:
        print(path.read_text())
        return
    table = Table(title=f"final recipes: {len(networks)} papers' networks, {args.seeds} seeds each")
    for column in ("recipe", "acc %", "between nets", "between seeds", "SNR", "self tau", "seeds/1 pt", "s/train"):
        table.add_column(column, justify="right")
    for r in recipes:
        table.add_row(r["recipe"], f"{100 * r['mean_accuracy']:.1f}", f"{100 * r['between_networks_std']:.2f}",
                      f"{100 * r['seed_std']:.2f}", f"{r['snr']:.1f}", f"{r['self_kendall_tau']:.2f}",
                      str(r["seeds_for_one_point"]), f"{r['seconds_per_training']:.0f}")
    Console().print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
