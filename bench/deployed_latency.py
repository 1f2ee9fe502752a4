"""Latency as deployed: does an exported network run at nas's figure where it is deployed?

    python bench/deployed_latency.py [--format torchscript|onnx|timm] [--study NAME --storage URL] [--quick] [--json]

Exports the 8 seed networks and 5 found architectures (the best 5 of ``--study``, else 5 sampled
from ``mbconv`` with a fixed seed), each timed by nas at export (in process, freed memory kept),
then times each exported file with ``nas latency check`` (a fresh process with only the runtime
loaded) in (a) the environment its DEPLOY.md documents and (b) a default environment (glibc's
thresholds unset). Target: (a) within 10% of nas's figure for every network; (b) as measured.
Needs an otherwise idle CPU (it measures). ``--quick``: 2 seeds and 1 sample, one pass each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import save
from nas.architecture import Architecture
from nas.export import Network, export
from nas.latency import random_networks
from nas.latency.allocator import with_allocator
from nas.latency.deployment import check_deployed, read_deployment
from nas.results import load_study, rank, resolve_architecture, study_reward
from search_spaces import SEED_NAMES, build_model, get_space, seed_architecture
from storage import Store

SAMPLE_SEED = 18  # the sampled "found" architectures, when no study is given
TARGET = 0.10  # (a) within this share of nas's figure


def architectures(study: str | None, storage: str | None, seeds: int, found: int) -> list[tuple[str, Architecture]]:
    """The seed networks and the found ones, each with what it is."""
    chosen = [("seed", Architecture(name, seed_architecture(name))) for name in SEED_NAMES[:seeds]]
    if study:
        store = Store.open(storage, create=False)
        loaded = load_study(store, study)
        for _, record in rank(loaded, study_reward(loaded, None, None), found):
            chosen.append(("found", resolve_architecture(str(record.number), store, study)))
    else:
        for i, genotype in enumerate(random_networks(get_space("mbconv"), found, SAMPLE_SEED)):
            chosen.append(("sampled", Architecture(f"mbconv-sample-{i}", genotype)))
    return chosen


def default_environment() -> dict[str, str]:
    """A plain process's environment: glibc's allocator thresholds and any preload removed."""
    return {k: v for k, v in with_allocator(os.environ, "default").items() if k != "LD_PRELOAD"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="torchscript", choices=("torchscript", "onnx", "timm"))
    parser.add_argument("--study", help="take the 5 found architectures from this study (best by its reward)")
    parser.add_argument("--storage", default=None)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 1 sampled network, one timed pass each")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seeds, found, passes = (2, 1, 1) if args.quick else (len(SEED_NAMES), 5, 3)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nas-deployed-") as folder:
        for kind, arch in architectures(args.study, args.storage, seeds, found):
            suffix = {"torchscript": ".pt", "onnx": ".onnx", "timm": ""}[args.format]
            network = Network(arch, build_model(arch.genotype, num_classes=1000).eval())
            path = export(network, args.format, Path(folder) / f"{len(rows)}{suffix}").path
            deployment = read_deployment(path)
            documented = check_deployed(path, {**os.environ, **deployment.environment}, passes=passes)
            default = check_deployed(path, default_environment(), passes=passes)
            rows.append({"network": arch.name, "kind": kind, "nas_ms": deployment.latency_ms,
                         "documented_ms": documented.latency_ms, "default_ms": default.latency_ms,
                         "documented_ratio": documented.ratio, "default_ratio": default.ratio,
                         "within_target": abs(documented.ratio - 1) <= TARGET,
                         "documented_environment": documented.environment, "default_allocator": default.allocator,
                         "device": deployment.device})
    figures = {"format": args.format, "quick": args.quick, "target": f"documented within {TARGET:.0%} of nas's figure",
               "all_within_target": all(r["within_target"] for r in rows),
               "documented_ratio_max_abs": max(abs(r["documented_ratio"] - 1) for r in rows), "networks": rows}
    path = save("deployed_latency", figures)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return
    table = Table(title=f"{args.format} exports: nas's figure vs `nas latency check` (ms)")
    for column in ("network", "kind", "nas", "(a) DEPLOY.md env", "ratio", "(b) default env", "ratio"):
        table.add_column(column, justify="left" if column in ("network", "kind") else "right")
    for r in rows:
        table.add_row(r["network"], r["kind"], f"{r['nas_ms']:.2f}", f"{r['documented_ms']:.2f}",
                      f"{r['documented_ratio']:.2f}", f"{r['default_ms']:.2f}", f"{r['default_ratio']:.2f}")
    console = Console()
    console.print(table)
    console.print(f"(a) within {TARGET:.0%} for every network: {figures['all_within_target']}; saved {path}")


if __name__ == "__main__":
    main()
