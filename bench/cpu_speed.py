"""What `nas.cpu_speed` saves on this CPU, side by side: a proxy epoch as nas trained until
2026-12-01 (AdamW's Python loop over parameters, each convolution padding inside itself), with
torch's fused AdamW, and with both the fused AdamW and explicit padding where a depthwise kernel is
larger than its input map (as nas trains now).

- epochs: each of --networks random networks of --space trains one proxy epoch (the default
  estimator's training: the proxy's genotype, resolution, batch, learning rate and schedule,
  channels-last, one thread) in each of the three ways, from the same initial weights on the same
  batches, the three taking turns step by step; each way's epoch seconds (the sum of its steps) and
  the ratios, then their medians.
- layers: every distinct depthwise layer those networks pad apart (channels, input map, kernel,
  stride), forward and backward on one proxy batch with its padding inside the convolution and
  before it, taking turns; median milliseconds of --repeats.

    python bench/cpu_speed.py [--space mbconv] [--data digits] [--networks 10] [--repeats 20] [--json]
"""

from __future__ import annotations

import argparse
import copy
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
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler

from _common import save

from nas.cpu_speed import channels_last, pad_small_maps
from nas.data import ProxyData, load_proxy_data
from nas.proxy import ProxySettings, proxy_genotype
from nas.supernet import random_genotype
from search_spaces import Genotype, build_model, get_space

WAYS = ("before", "fused", "now")  # (fused AdamW, explicit padding): (no, no), (yes, no), (yes, yes)
Layer = tuple[int, int, int, int]  # channels, input map side, kernel, stride


def trainers_for(genotype: Genotype, data: ProxyData, settings: ProxySettings, steps: int) -> tuple[dict, list[Layer]]:
    """Each way's (model, optimizer, schedule), all from the same initial weights, and the layers
    the padded way pads apart as (channels, input map, kernel, stride)."""
    torch.manual_seed(settings.seed)
    plain = channels_last(build_model(genotype, num_classes=data.num_classes, in_chans=data.in_chans)).train()
    models = {way: copy.deepcopy(plain) for way in WAYS}
    names = {module: name for name, module in models["now"].named_modules()}
    padded = {names[conv] for conv in pad_small_maps(models["now"], data.x_train)}
    layers: list[Layer] = []

    def record(module: torch.nn.Conv2d, args: tuple) -> None:
        layers.append((module.in_channels, args[0].shape[-1], module.kernel_size[0], module.stride[0]))

    hooks = [module.register_forward_pre_hook(record) for name, module in plain.named_modules() if name in padded]
    with torch.no_grad():
        plain.eval()(data.x_train[:1])
    for hook in hooks:
        hook.remove()
    trainers = {}
    for way, model in models.items():
        optimizer = create_optimizer_v2(model, "adamw", lr=settings.lr, weight_decay=settings.weight_decay, fused=way != "before")
        scheduler = CosineLRScheduler(optimizer, t_initial=steps, warmup_t=min(20, steps // 10),
                                      warmup_lr_init=settings.lr / 10, t_in_epochs=False)
        trainers[way] = (model, optimizer, scheduler)
    return trainers, layers


def epoch_seconds(genotype: Genotype, data: ProxyData, settings: ProxySettings) -> tuple[dict[str, float], list[Layer]]:
    """One proxy epoch's seconds in each way, the three taking turns step by step, and the layers padded apart."""
    order = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(settings.seed))
    batches = [index for index in order.split(settings.batch_size) if len(index) >= 2]
    trainers, layers = trainers_for(genotype, data, settings, len(batches))
    seconds = dict.fromkeys(WAYS, 0.0)
    for number, index in enumerate(batches):
        x, y = data.x_train[index], data.y_train[index]
        for way in WAYS[number % len(WAYS):] + WAYS[:number % len(WAYS)]:
            model, optimizer, scheduler = trainers[way]
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            seconds[way] += time.perf_counter() - start
            scheduler.step_update(number + 1)
    return seconds, layers


def layer_ms(layer: Layer, batch_size: int, repeats: int) -> dict[str, float]:
    """Forward and backward of one depthwise layer, padding inside it and before it, taking turns."""
    channels, side, kernel, stride = layer
    pad = kernel // 2
    x = torch.randn(batch_size, channels, side, side).to(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(channels, 1, kernel, kernel).to(memory_format=torch.channels_last).requires_grad_()
    ways = {"inside": lambda: F.conv2d(x, weight, stride=stride, padding=pad, groups=channels),
            "before": lambda: F.conv2d(F.pad(x, (pad,) * 4), weight, stride=stride, groups=channels)}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for repeat in range(repeats + 1):
        for way, run in ways.items():
            start = time.perf_counter()
            out = run()
            torch.autograd.grad(out, (x, weight), torch.ones_like(out))
            if repeat:  # the first is warm-up: oneDNN picks its kernels
                times[way].append(time.perf_counter() - start)
    return {f"{way}_ms": statistics.median(t) * 1e3 for way, t in times.items()}


def _median_ratio(rows: list[dict], top: str, bottom: str) -> float:
    return statistics.median(row[top] / row[bottom] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--networks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20, help="timings of each layer in each way")
    parser.add_argument("--seed", type=int, default=0, help="which random networks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.networks < 1 or args.repeats < 1:
        parser.error("--networks and --repeats must be >= 1")
    torch.set_num_threads(1)
    settings = ProxySettings()
    space, data = get_space(args.space), load_proxy_data(args.data, settings.resolution)
    rng = random.Random(args.seed)
    genotypes = [proxy_genotype(random_genotype(space, rng), settings.resolution) for _ in range(args.networks)]
    epoch_seconds(genotypes[0], data, settings)  # warm-up: oneDNN picks its kernels, the allocator grows
    rows, layers = [], set()
    for number, genotype in enumerate(genotypes):
        seconds, padded = epoch_seconds(genotype, data, settings)
        layers.update(padded)
        rows.append({"network": f"{space.name}-{number}", "layers_padded_apart": len(padded),
                     **{f"{way}_epoch_s": s for way, s in seconds.items()}})
        print(f"{rows[-1]['network']}: " + ", ".join(f"{way} {s:.2f} s" for way, s in seconds.items()), file=sys.stderr, flush=True)
    layer_rows = [{"channels": c, "map": side, "kernel": k, "stride": s, **layer_ms((c, side, k, s), settings.batch_size, args.repeats)}
                  for c, side, k, s in sorted(layers)]
    epochs = {"rows": rows, "median_fused_over_before": _median_ratio(rows, "fused_epoch_s", "before_epoch_s"),
              "median_now_over_fused": _median_ratio(rows, "now_epoch_s", "fused_epoch_s"),
              "median_now_over_before": _median_ratio(rows, "now_epoch_s", "before_epoch_s")}
    figures = {"space": space.name, "data": data.name, "resolution": settings.resolution, "batch_size": settings.batch_size,
               "threads": 1, "networks": args.networks, "repeats": args.repeats, "epochs": epochs,
               "layers": {"rows": layer_rows, "median_before_over_inside": _median_ratio(layer_rows, "before_ms", "inside_ms")}}
    path = save("cpu_speed", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"one proxy epoch of {space.name} networks on {data.name}, {settings.resolution} px, batch "
                        f"{settings.batch_size}, one thread")
    for column in ("network", "padded apart", "before s", "fused AdamW s", "now s", "now / before"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["network"], str(row["layers_padded_apart"]), f"{row['before_epoch_s']:.2f}", f"{row['fused_epoch_s']:.2f}",
                      f"{row['now_epoch_s']:.2f}", f"{row['now_epoch_s'] / row['before_epoch_s']:.3f}")
    Console().print(table)
    print(f"medians: fused / before {epochs['median_fused_over_before']:.3f}, now / fused {epochs['median_now_over_fused']:.3f}, "
          f"now / before {epochs['median_now_over_before']:.3f}")
    table = Table(title="depthwise layers whose kernel is larger than their map: forward + backward, one batch")
    for column in ("channels", "map", "kernel", "stride", "padding inside ms", "before ms", "before / inside"):
        table.add_column(column, justify="right")
    for row in layer_rows:
        table.add_row(str(row["channels"]), str(row["map"]), str(row["kernel"]), str(row["stride"]), f"{row['inside_ms']:.2f}",
                      f"{row['before_ms']:.2f}", f"{row['before_ms'] / row['inside_ms']:.2f}")
    Console().print(table)
    print(f"median before / inside {figures['layers']['median_before_over_inside']:.2f}; saved {path}")


if __name__ == "__main__":
    main()
