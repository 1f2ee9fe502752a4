"""Does an estimator rank networks as the final recipe does?

The estimators issue judges estimators against a reference of short trainings (4 epochs, 16 px);
what a search must predict is the accuracy after the final recipe that `bench/search_quality.py`
re-trains with (by default 12 epochs, 64 px, digits). This bench takes every network that bench
re-trained in one or more of its work folders (or that `bench/final_recipe.py` trained in one of
its recipe folders), the papers' networks and the best found network of each search run, as a
reference (a network's accuracy: the mean of all its final-recipe trainings, every seed and folder;
its seed 0 and seed 1 where both exist give the reference's own agreement and each estimator's
noise), and ranks estimators against it with `nas estimators rank`'s measure. ResNet-18 and
ShuffleNet V2 are left out: they are not block networks an estimator can build.

    python bench/final_ranking.py --workdir DIR [--workdir DIR ...] [--estimator SPEC ...] [--data mnist]
                                  [--supernet PATH --supernet-steps 20] [--results DIR] [--json]

Networks are scored one at a time on one thread; nothing else should run beside it (seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
from rich.console import Console
from rich.table import Table

from _common import RESULTS, save
from search_quality import parse_step_key

from nas.estimators.choose import make_estimator
from nas.estimators.ranking import Reference, rank_estimator
from nas.estimators.supernet import SupernetEstimator
from nas.proxy import ProxySettings, TuneSettings
from nas.results import resolve_architecture
from search_spaces import PAPER_NAMES, Genotype, seed_architecture
from storage import Store

DEFAULT_ESTIMATORS = ("train:epochs=1", "params", "macs")


@dataclass
class Trained:
    """One network and its final-recipe accuracies by seed (several folders may add to a seed)."""

    genotype: Genotype
    accuracies: dict[int, list[float]] = field(default_factory=dict)

    def add(self, seed: int, accuracy: float) -> None:
        self.accuracies.setdefault(seed, []).append(accuracy)


def collect(workdirs: list[Path]) -> tuple[dict[str, Trained], list[str]]:
    """Every block network re-trained in ``workdirs`` with their one final recipe (the same
    architecture found by two runs is one network); the recipe."""
    networks: dict[str, Trained] = {}
    labels: dict[Genotype, str] = {}  # the first label an architecture was found under
    recipe: list[str] | None = None
    for workdir in workdirs:
        steps = workdir / "steps.json"
        if not steps.is_file():
            raise SystemExit(f"--workdir {workdir}: no steps.json (not a work folder of bench/search_quality.py or final_recipe.py)")
        store = Store.open(f"sqlite:///{workdir / 'nas.db'}")
        for key, done in json.loads(steps.read_text())["done"].items():
            kind, seed = parse_step_key(key)
            if kind not in ("train", "baseline"):
                continue
            args = done["args"]
            flags = args[args.index("--epochs"):args.index("-o")]
            flags = flags[:flags.index("--seed")] if "--seed" in flags else flags
            if recipe is None:
                recipe = flags
            elif flags != recipe:
                raise SystemExit(f"{workdir}: {key} was trained with {' '.join(flags)}, the others with {' '.join(recipe)}")
            answer = done["answer"][0] if kind == "baseline" else done["answer"]
            if kind == "baseline":
                if answer["name"] not in PAPER_NAMES:
                    continue
                label, genotype = answer["name"], seed_architecture(answer["name"])
            else:
                study = args[args.index("--study") + 1]
                label = f"{workdir.name}/{study}"
                genotype = resolve_architecture(args[1], store, study).genotype
            label = labels.setdefault(genotype, label)
            networks.setdefault(label, Trained(genotype)).add(seed, answer["accuracy"])
    return networks, recipe or []


def as_reference(networks: dict[str, Trained], recipe: list[str]) -> Reference:
    mean_of = {label: statistics.fmean(a for seed in t.accuracies.values() for a in seed) for label, t in networks.items()}
    repeated = {label: (statistics.fmean(t.accuracies[0]), statistics.fmean(t.accuracies[1]))
                for label, t in networks.items() if 0 in t.accuracies and 1 in t.accuracies}
    return Reference("final-recipe", {label: t.genotype for label, t in networks.items()}, mean_of, repeated,
                     {"recipe": recipe})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, action="append", required=True,
                        help="a bench/search_quality.py work folder (repeat for several)")
    parser.add_argument("--estimator", nargs="+", default=list(DEFAULT_ESTIMATORS), help="`nas search --estimator` specs")
    parser.add_argument("--data", default="digits", help="the data the estimators train or score on")
    parser.add_argument("--supernet", type=Path, help="a trained supernet checkpoint: also rank it (it scores on "
                                                      "its own data, only the networks of its space)")
    parser.add_argument("--supernet-steps", type=int, nargs="+", default=[20],
                        help="fine-tune steps from the supernet's weights (0: read off)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for final_ranking.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    networks, recipe = collect(args.workdir)
    reference = as_reference(networks, recipe)
    console = Console(stderr=True)
    console.print(f"{len(reference.accuracy)} networks re-trained with `{' '.join(recipe)}`, "
                  f"{len(reference.repeated)} with seeds 0 and 1 (their agreement: tau {reference.self_tau})")
    rankings = []
    for spec in args.estimator:
        console.print(f"ranking {spec}")
        rankings.append(rank_estimator(reference, spec, lambda seed, spec=spec: make_estimator(spec, args.data, seed)))
    if args.supernet:
        for steps in args.supernet_steps:
            label = f"supernet:{args.supernet.stem},steps={steps}"
            console.print(f"ranking {label}")
            rankings.append(rank_estimator(reference, label, lambda seed, steps=steps: SupernetEstimator(
                args.supernet, tune=TuneSettings(steps, ProxySettings.lr, seed=seed) if steps else None, seed=seed)))
    figures = {
        "workdirs": [str(w) for w in args.workdir], "final_recipe": recipe, "data": args.data, "threads": 1,
        "reference": {"networks": len(reference.accuracy), "repeated": len(reference.repeated),
                      "self_kendall_tau": reference.self_tau, "seed_noise": reference.seed_noise,
                      "accuracy": reference.accuracy,
                      "trainings": {label: t.accuracies for label, t in networks.items()}},
        "estimators": [{"estimator": r.estimator, "networks": len(r.scores), "kendall_tau": r.kendall_tau,
                        "spearman": r.spearman, "snr": r.snr, "seconds_per_arch": r.seconds_per_arch,
                        "scores": {label: s[0] for label, s in r.scores.items()}} for r in rankings],
    }
    path = save("final_ranking", figures, args.results)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    agreement = "" if reference.self_tau is None else f"; its seeds agree at tau {reference.self_tau:.2f}"
    table = Table(title=f"estimators against the final recipe ({len(reference.accuracy)} networks{agreement})")
    for column in ("estimator", "networks", "Kendall tau", "Spearman", "SNR", "s / network"):
        table.add_column(column, justify="right")
    for r in rankings:
        table.add_row(r.estimator, str(len(r.scores)), f"{r.kendall_tau:.2f}", f"{r.spearman:.2f}",
                      "-" if r.snr is None else f"{r.snr:.1f}", f"{r.seconds_per_arch:.2f}")
    Console().print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
