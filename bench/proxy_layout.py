"""Memory layout of a proxy training step on this CPU: NCHW (PyTorch's default) against channels-last
(NHWC, what `nas.proxy` trains in), side by side on the same networks and batches.

For --networks random networks of --space at the proxy's resolution and stride rule, the median
seconds of one training step (forward, backward, AdamW) in each layout, the layouts alternating
step by step, one thread.

    python bench/proxy_layout.py [--space mbconv] [--networks 8] [--steps 8] [--batch-size 32] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from _common import save

from nas.data import load_proxy_data
from nas.proxy import ProxySettings, proxy_genotype
from nas.supernet import random_genotype
from search_spaces import build_model, get_space

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--networks", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=ProxySettings.batch_size)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    resolution = ProxySettings.resolution
    space, data = get_space(args.space), load_proxy_data(args.data, resolution)
    rng = random.Random(0)
    rows = []
    for index in range(args.networks):
        genotype = proxy_genotype(random_genotype(space, rng), resolution)
        trainers = {}
        for layout, memory_format in LAYOUTS.items():
            torch.manual_seed(0)
            model = build_model(genotype, num_classes=data.num_classes, in_chans=data.in_chans).to(memory_format=memory_format)
            trainers[layout] = (model.train(), torch.optim.AdamW(model.parameters(), lr=ProxySettings.lr))
        seconds = {layout: [] for layout in LAYOUTS}
        for step in range(args.steps + 1):
            picked = torch.randint(0, len(data.x_train), (args.batch_size,), generator=torch.Generator().manual_seed(step))
            for layout, (model, optimizer) in trainers.items():
                took = _step(model, optimizer, data.x_train[picked], data.y_train[picked])
                if step:  # the first step of each is warm-up (oneDNN picks its kernels)
                    seconds[layout].append(took)
        row = {"network": index, "arch_def": genotype.arch_def,
               **{f"{layout}_step_s": statistics.median(s) for layout, s in seconds.items()}}
        row["speedup"] = row["nchw_step_s"] / row["channels_last_step_s"]
        rows.append(row)
        print(f"network {index}: {row['nchw_step_s']:.3f} s NCHW, {row['channels_last_step_s']:.3f} s channels-last "
              f"({row['speedup']:.2f}x)", file=sys.stderr, flush=True)
    figures = {"space": space.name, "data": data.name, "resolution": resolution, "batch_size": args.batch_size,
               "threads": 1, "rows": rows, "median_speedup": statistics.median(r["speedup"] for r in rows)}
    path = save("proxy_layout", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"one proxy training step, {space.name} at {resolution}px, batch {args.batch_size}, one thread")
    for column in ("network", "NCHW s", "channels-last s", "speed-up"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["network"]), f"{row['nchw_step_s']:.3f}", f"{row['channels_last_step_s']:.3f}",
                      f"{row['speedup']:.2f}x")
    Console().print(table)
    print(f"median speed-up {figures['median_speedup']:.2f}x; saved {path}")


if __name__ == "__main__":
    main()
