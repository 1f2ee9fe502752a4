"""Memory layout of a training step on this CPU: NCHW (PyTorch's default) against channels-last
(NHWC, what `nas.proxy` and `nas train` train in), side by side on the same networks and batches.

Two parts, each the median seconds of one training step (forward, backward, AdamW) in each layout,
the layouts alternating step by step, one thread:
- proxy: --networks random networks of --space at the proxy's resolution and stride rule, on the
  proxy's grey images and batch;
- final: the papers' networks (those `bench/search_quality.py` re-trains) at --final-resolution on
  RGB images and `nas train`'s batch, the search quality bench's final recipe.

    python bench/layout.py [--space mbconv] [--networks 8] [--steps 8] [--final-resolution 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from _common import save
from search_quality import PAPERS, WIDTH_VARIANTS

from nas.baselines import baseline_model
from nas.data import ProxyData, load_proxy_data
from nas.proxy import ProxySettings, proxy_genotype
from nas.recipe import TrainSettings
from nas.supernet import random_genotype
from search_spaces import build_model, get_space

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    return time.perf_counter() - start


def compare(name: str, make: Callable[[], torch.nn.Module], data: ProxyData, batch_size: int, steps: int,
            rgb: bool) -> dict:
    """Median step seconds of ``make()`` in each layout, the same batches in turn."""
    trainers = {}
    for layout, memory_format in LAYOUTS.items():
        torch.manual_seed(0)
        model = make().to(memory_format=memory_format)
        trainers[layout] = (model.train(), torch.optim.AdamW(model.parameters(), lr=ProxySettings.lr))
    seconds: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    for step in range(steps + 1):
        picked = torch.randint(0, len(data.x_train), (batch_size,), generator=torch.Generator().manual_seed(step))
        x = data.x_train[picked]
        x = x.expand(-1, 3, -1, -1) if rgb else x
        for layout, (model, optimizer) in trainers.items():
            took = _step(model, optimizer, x, data.y_train[picked])
            if step:  # the first step of each is warm-up (oneDNN picks its kernels)
                seconds[layout].append(took)
    row = {"network": name, **{f"{layout}_step_s": statistics.median(s) for layout, s in seconds.items()}}
    row["speedup"] = row["nchw_step_s"] / row["channels_last_step_s"]
    print(f"{name}: {row['nchw_step_s']:.3f} s NCHW, {row['channels_last_step_s']:.3f} s channels-last "
          f"({row['speedup']:.2f}x)", file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--networks", type=int, default=8, help="random networks of the proxy part")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--final-resolution", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    resolution = ProxySettings.resolution
    space, proxy_data = get_space(args.space), load_proxy_data(args.data, resolution)
    rng = random.Random(0)
    genotypes = [proxy_genotype(random_genotype(space, rng), resolution) for _ in range(args.networks)]
    proxy_rows = [compare(f"{space.name}-{index}", lambda g=g: build_model(g, num_classes=proxy_data.num_classes,
                                                                           in_chans=proxy_data.in_chans),
                          proxy_data, ProxySettings.batch_size, args.steps, rgb=False)
                  for index, g in enumerate(genotypes)]
    final_data = load_proxy_data(args.data, args.final_resolution)
    final_rows = [compare(name, lambda name=name: baseline_model(name).make(final_data.num_classes), final_data,
                          TrainSettings.batch_size, args.steps, rgb=True)
                  for name in PAPERS + WIDTH_VARIANTS]
    parts = {
        "proxy": {"networks": f"{args.networks} random {space.name}", "resolution": resolution, "in_chans": 1,
                  "batch_size": ProxySettings.batch_size, "rows": proxy_rows},
        "final": {"networks": "the papers' networks", "resolution": args.final_resolution, "in_chans": 3,
                  "batch_size": TrainSettings.batch_size, "rows": final_rows},
    }
    for part in parts.values():
        part["median_speedup"] = statistics.median(r["speedup"] for r in part["rows"])
    figures = {"data": args.data, "threads": 1, "steps": args.steps, "parts": parts}
    path = save("layout", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, part in parts.items():
        table = Table(title=f"{key}: one training step at {part['resolution']}px, batch {part['batch_size']}, one thread")
        for column in ("network", "NCHW s", "channels-last s", "speed-up"):
            table.add_column(column, justify="right")
        for row in part["rows"]:
            table.add_row(row["network"], f"{row['nchw_step_s']:.3f}", f"{row['channels_last_step_s']:.3f}",
                          f"{row['speedup']:.2f}x")
        Console().print(table)
        print(f"{key}: median speed-up {part['median_speedup']:.2f}x")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
