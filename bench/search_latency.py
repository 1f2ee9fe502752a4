"""Does a search time its candidates as a deployment runs them? The process that trained, the
measuring child, and a fresh process, side by side.

A search trial trains a proxy and times the network. A process that has trained runs inference
slower afterwards, so nas times every whole network in a child process that never trains
(``nas.latency.isolated``). Two parts, run one after the other (never in parallel):

- ``mechanism``: ``--networks`` random networks of the space; for each, this process first trains
  another network's one-epoch proxy (as a trial does), then times the network here (how searches
  timed before the child) and in the measuring child (now), in alternating order; the reference is
  the same network timed in a fresh process that never trained, one process a network.
- ``search``: the default search (``nas search --space S --target-latency 20ms --trials T``, latency
  measured) on a fresh SQLite file; each completed trial's stored latency against the same network
  timed afterwards in a fresh process.

Each row is a ratio to the fresh process (1.00: a deployment's figure).

    python bench/search_latency.py [--space mbconv] [--networks 10] [--trials 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save
from nas import SearchConfig
from nas.data import load_proxy_data
from nas.estimators.training import ProxyTraining
from nas.latency import LatencySettings, measure_latency, measure_network, random_networks
from nas.proxy import ProxySettings
from nas.results import record_genotype
from nas.workers import ScaleOut, search
from search_spaces import Genotype, build_model, get_space
from storage import Store, TrialRecord

NETWORK_SEED = 321
FRESH_PROCESS = """
import json, sys
from nas.latency import LatencySettings, measure_latency
from search_spaces import Genotype, build_model
genotype = Genotype.from_json(sys.stdin.read())
print(json.dumps(measure_latency(build_model(genotype, num_classes=1000), LatencySettings()).latency_ms))
"""


def in_fresh_process(genotype: Genotype) -> float:
    """The network timed by a new interpreter that never trained: what a deployment measures."""
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS], input=genotype.to_json(), capture_output=True,
                          text=True, check=True)
    return float(json.loads(done.stdout))


def summary(ratios: list[float]) -> dict[str, float]:
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def mechanism(space: str, count: int, console: Console) -> dict[str, Any]:
    networks = random_networks(get_space(space), count, NETWORK_SEED)
    data = load_proxy_data("digits", ProxySettings().resolution)
    settings = LatencySettings()
    rows = []
    for i, genotype in enumerate(networks):
        ProxyTraining(data, ProxySettings()).accuracy(networks[(i + 1) % count], lambda *args, **kwargs: None)
        timings = {}
        for where in ("trained", "child") if i % 2 == 0 else ("child", "trained"):
            timings[where] = (measure_latency(build_model(genotype), settings) if where == "trained"
                              else measure_network(genotype, settings)).latency_ms
        timings["fresh"] = in_fresh_process(genotype)
        rows.append(timings)
        console.print(f"network {i + 1}/{count}: trained {timings['trained']:.2f} ms, child {timings['child']:.2f} ms, "
                      f"fresh {timings['fresh']:.2f} ms")
    return {"networks": rows, **{f"{where}_over_fresh": summary([r[where] / r["fresh"] for r in rows])
                                 for where in ("trained", "child")}}


def searched(space: str, trials: int, console: Console) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{folder}/nas.db")
        config = SearchConfig(target_latency_ms=20.0, space=space, trials=trials, latency_mode="measure",
                              study="search-latency")
        search(config, store, ScaleOut(1), top=0)
        frozen = store.optuna().get_all_trials(store.optuna().get_study_id_from_name(config.study_name))
        records = [TrialRecord.from_trial(t) for t in frozen if t.datetime_complete is not None]
        rows = []
        for record in records:
            genotype = record_genotype(record)
            if record.latency_ms is None or genotype is None:
                continue
            rows.append({"trial": record.number, "searched": record.latency_ms, "fresh": in_fresh_process(genotype)})
            console.print(f"trial {record.number}: searched {record.latency_ms:.2f} ms, fresh {rows[-1]['fresh']:.2f} ms")
    return {"trials": rows, "searched_over_fresh": summary([r["searched"] / r["fresh"] for r in rows])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--networks", type=int, default=10, help="networks timed after a training (mechanism)")
    parser.add_argument("--trials", type=int, default=12, help="candidates of the default search (end to end)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    console = Console(stderr=args.json)
    figures = {"space": args.space, "mechanism": mechanism(args.space, args.networks, console),
               "search": searched(args.space, args.trials, console)}
    path = save("search_latency", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"latency over a fresh process's, {args.space} (1.00: as deployed)")
    for column in ("timed", "networks", "median", "min", "max"):
        table.add_column(column, justify="left" if column == "timed" else "right")
    rows = (("in the process that trained (before)", figures["mechanism"]["networks"], figures["mechanism"]["trained_over_fresh"]),
            ("in the measuring child (now)", figures["mechanism"]["networks"], figures["mechanism"]["child_over_fresh"]),
            ("by the default search (now)", figures["search"]["trials"], figures["search"]["searched_over_fresh"]))
    for label, members, ratio in rows:
        table.add_row(label, str(len(members)), *(f"{ratio[k]:.3f}" for k in ("median", "min", "max")))
    console.print(table)
    console.print(f"saved {path}")


if __name__ == "__main__":
    main()
