"""Accuracy estimators against long training: which one should a search rank by?

    python bench/estimators.py [--reference NAME] [--estimator SPEC ...] [--budget-s 10] [--search-trials 10] [--json]

Ranks the reference's networks (``nas estimators reference``, stored in ``bench/.estimators.db``)
by every estimator (one already ranked against it is read back unless ``--rerank [SPEC ...]``),
picks the default (best Kendall tau within ``--budget-s`` seconds per network), then times a short
real search with it and one with the default before (``--before``, the 4-epoch proxy) in the same
run: candidates per hour before and after. Needs a built reference; takes as long as the trained
estimators do (their seconds per network x the networks).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console

from _common import save
from nas import SearchConfig, run_search
from nas.estimators.choose import make_estimator
from nas.render import estimator_table
from nas.estimators.ranking import load_reference, rank_estimator, store_ranking
from storage import Store
from storage import reference as reference_store

STORAGE = f"sqlite:///{Path(__file__).parent / '.estimators.db'}"
ESTIMATORS = ("params", "macs", "synflow", "naswot", "grad_norm", "snip", "zen",
              "train:epochs=1,score=validation", "train:epochs=1")  # the last: progressive validation


def search_rate(estimator: str, trials: int) -> dict:
    """Candidates per hour of a real mbconv search at 20 ms with ``estimator`` (latency measured)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = SearchConfig(target_latency_ms=20.0, trials=trials, estimator=estimator, pruner="none")
        start = time.perf_counter()
        result = run_search(config, Store.open(f"sqlite:///{Path(tmp) / 'rate.db'}"))
        wall = time.perf_counter() - start
    return {"estimator": estimator, "trials": result.ran, "wall_s": wall, "per_hour": 3600 * result.ran / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=None)
    parser.add_argument("--estimator", action="append", default=None)
    parser.add_argument("--budget-s", type=float, default=10.0, help="per-network budget of the default estimator")
    parser.add_argument("--search-trials", type=int, default=10)
    parser.add_argument("--before", default="train:epochs=4",
                        help="the estimator of the default search before the measurement chose (the 4-epoch proxy)")
    parser.add_argument("--storage", default=STORAGE)
    parser.add_argument("--rerank", nargs="*", metavar="SPEC",
                        help="rank again these estimators already ranked against the reference (no SPEC: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    store = Store.open(args.storage)
    reference = load_reference(store, args.reference)
    stored = {r.estimator: r for r in reference_store.rankings(store, reference.name)}
    rows = []
    for spec in args.estimator or ESTIMATORS:
        rerank = args.rerank is not None and (not args.rerank or spec in args.rerank)
        if spec in stored and not rerank:  # ranked before against this reference: the bench resumes
            ranking = stored[spec]
        else:
            ranking = rank_estimator(reference, spec, lambda seed, spec=spec: make_estimator(spec, "digits", seed))
            store_ranking(store, reference, ranking, {"data": "digits"})
        rows.append({"estimator": spec, "kendall_tau": ranking.kendall_tau, "spearman": ranking.spearman,
                     "snr": ranking.snr, "seconds_per_arch": ranking.seconds_per_arch,
                     "tau_per_second": ranking.kendall_tau / ranking.seconds_per_arch})
        print(f"{spec}: tau {ranking.kendall_tau:.3f} in {ranking.seconds_per_arch:.2f} s / network", file=sys.stderr)
    affordable = [r for r in rows if r["seconds_per_arch"] <= args.budget_s]
    default = max(affordable, key=lambda r: r["kendall_tau"])
    before = search_rate(args.before, args.search_trials)  # side by side: this machine's speed drifts between runs
    rate = search_rate(default["estimator"], args.search_trials)
    size_tau = max(r["kendall_tau"] for r in rows if r["estimator"] in ("params", "macs"))
    figures = {
        "reference": {"name": reference.name, "networks": len(reference.accuracy), "repeated": len(reference.repeated),
                      "self_kendall_tau": reference.self_tau, "seed_noise": reference.seed_noise,
                      "settings": reference.settings, "accuracy": reference.accuracy},
        "estimators": rows,
        "default_estimator": default["estimator"],
        "budget_s_per_network": args.budget_s,
        "search_trials_per_hour": {"before": before["per_hour"], "before_run": before,
                                   "after": rate["per_hour"], "after_run": rate},
        "targets": {"kendall_tau_at_least": 0.6, "beat_size_by": 0.1, "trials_per_hour_factor": 10},
        "met": {"kendall_tau": default["kendall_tau"] >= 0.6, "beats_size": default["kendall_tau"] >= size_tau + 0.1,
                "ten_x": rate["per_hour"] >= 10 * before["per_hour"]},
    }
    path = save("estimators", figures)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return
    table = estimator_table(rows, f"estimators against {reference.name} ({len(reference.accuracy)} networks, "
                                  f"reference self-tau {reference.self_tau})")
    Console(width=120).print(table)
    trials = figures["search_trials_per_hour"]
    print(f"default: {default['estimator']} (best tau within {args.budget_s:g} s / network); search candidates per hour "
          f"{trials['before']:.0f} -> {trials['after']:.0f}; targets met: {figures['met']}; saved {path}")


if __name__ == "__main__":
    main()
