"""Put the reference a results file ranked against back into a database.

`bench/.estimators.db` is not committed; `bench/results/estimators.json` keeps the reference it ranked
against (its settings and each network's seed-0 accuracy). This stores those accuracies with the
networks `nas estimators reference` plans for the same settings, so the bench's rankings can be made
again on a fresh machine without two hours of reference training; `nas estimators reference` with the
same settings and `--storage` then trains only the second-seed repeats (the reference's own noise),
which the results file does not keep. Restored rows record a training time of 0 s (not recorded).

    python bench/restore_reference.py --storage sqlite:///REF.db [--results bench/results/estimators.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nas.estimators.reference import ReferenceConfig, reference_networks
from nas.proxy import ProxySettings
from search_spaces import SEED_NAMES
from storage import Store
from storage import reference as reference_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="database URL to store the reference in")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "estimators.json")
    args = parser.parse_args()
    recorded = json.loads(args.results.read_text()).get("reference")
    if not isinstance(recorded, dict) or not {"name", "settings", "accuracy"} <= set(recorded):
        raise SystemExit(f"{args.results}: no reference (name, settings, accuracy) in it; give bench/estimators.py's results")
    settings = recorded["settings"]
    config = ReferenceConfig(space=settings["space"], data=settings["data"],
                             samples=len(recorded["accuracy"]) - len(SEED_NAMES),
                             proxy=ProxySettings(**{k: v for k, v in settings.items() if k not in ("space", "data")}))
    if config.reference_name != recorded["name"]:
        raise SystemExit(f"{args.results}: reference {recorded['name']!r} is not one `nas estimators reference` "
                         f"names from its settings ({config.reference_name!r})")
    networks = dict(reference_networks(config))
    if set(networks) != set(recorded["accuracy"]):
        raise SystemExit(f"{args.results}: its networks are not the ones these settings plan")
    store = Store.open(args.storage)
    stored = {**config.settings, "fail_reason": None}
    for label, genotype in networks.items():
        reference_store.add_result(store, recorded["name"], label, 0, architecture=genotype.to_dict(),
                                   accuracy=recorded["accuracy"][label], train_s=0.0, settings=stored)
    print(f"{recorded['name']}: {len(networks)} networks stored in {args.storage}; "
          f"`nas estimators reference --space {config.space} --samples {config.samples} --storage {args.storage}` "
          f"trains its second seeds")


if __name__ == "__main__":
    main()
