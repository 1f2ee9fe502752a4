"""Where a supernet read-off's time goes, and what 0.5 s a candidate would ask of this CPU.

A read-off (``--estimator supernet``) builds a candidate's sub-network, runs it forward on the
calibration images (BatchNorm statistics, training mode, no gradients) and on the validation
split, on one thread. Its time is its convolutions' work over the rate this core reaches on such
small layers, so the bench measures both for --candidates random networks of the space, on a
supernet as `nas supernet train` makes it for --data at --resolution (untrained: the work and time
do not depend on the weights' values): the work (torch's FLOP counter: convolutions and the
classifier, one image's FLOPs times the images; BatchNorm, activations and SE products are not
counted but are in the time), the time of each part, the rate reached (counted GFLOP over the
calibration and validation time), and this core's rate on one large matrix product on one thread,
which no convolution here beats. Beside them, the rate the counted work would need for the whole
read-off, building included, to take 0.5 s. ``mnist`` at 16 px by default: the data and size the
supernet benches and their reference use (MNIST's 1,000 validation images).

    python bench/readoff_cost.py [--space mbconv] [--data mnist] [--resolution 16] [--candidates 20] [--seed 0] [--json]
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
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from _common import save

from nas.data import load_proxy_data
from nas.errors import NasError
from nas.supernet import Supernet, SupernetSettings, calibration_batches, random_genotype
from nas.threads import torch_threads
from search_spaces import Genotype, get_space

TARGET_S = 0.5  # the supernet issue's seconds a candidate
MATMUL_SIZE = 1024


def matmul_rate(repeats: int = 5) -> float:
    """GFLOP/s of this core on one large float32 matrix product (best of ``repeats``)."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    best = float("inf")
    for _ in range(repeats + 1):  # the first warms up
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * MATMUL_SIZE ** 3 / best / 1e9


def readoff_cost(supernet: Supernet, genotype: Genotype, calibration: list[torch.Tensor], x_val: torch.Tensor, y_val: torch.Tensor) -> dict[str, float]:
    """One read-off timed part by part (as the estimator runs it), then its work counted."""
    start = time.perf_counter()
    supernet.subnet(genotype)
    built = time.perf_counter()
    buffers = supernet.calibrate(genotype, calibration)
    calibrated = time.perf_counter()
    supernet.accuracy(genotype, buffers, x_val, y_val)
    done = time.perf_counter()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        supernet.forward(genotype, x_val[:1], train=False, buffers=buffers)
    images = sum(len(x) for x in calibration) + len(x_val)
    gflop = counter.get_total_flops() * images / 1e9
    return {"mflop_per_image": counter.get_total_flops() / 1e6, "images": images, "gflop": gflop,
            "build_s": built - start, "calibration_s": calibrated - built, "validation_s": done - calibrated,
            "total_s": done - start, "gflop_per_s": gflop / (done - built)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="draws the candidates and the calibration images")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.candidates < 1:
        parser.error("--candidates must be at least 1")
    try:
        data = load_proxy_data(args.data, args.resolution)
        space = get_space(args.space)
    except (NasError, ValueError) as err:
        parser.error(str(err))
    batch_size = min(SupernetSettings.batch_size, len(data.x_train))  # as the estimator draws its calibration
    rng = random.Random(args.seed)
    with torch_threads(1):
        peak = matmul_rate()
        supernet = Supernet(space, num_classes=data.num_classes, in_chans=data.in_chans, resolution=args.resolution)
        calibration = calibration_batches(data, batch_size, args.seed)
        readoff_cost(supernet, random_genotype(space, random.Random(-1)), calibration, data.x_val, data.y_val)  # warm-up
        rows = [readoff_cost(supernet, random_genotype(space, rng), calibration, data.x_val, data.y_val)
                for _ in range(args.candidates)]
    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    needed = median["gflop"] / (TARGET_S - median["build_s"]) if median["build_s"] < TARGET_S else float("inf")
    figures = {"space": args.space, "data": args.data, "resolution": args.resolution, "threads": 1,
               "calibration_images": sum(len(x) for x in calibration), "validation_images": len(data.x_val),
               "candidates": args.candidates, "median": median, "matmul_gflop_per_s": peak, "target_s": TARGET_S,
               "needed_gflop_per_s": needed, "needed_over_matmul": needed / peak,
               "rows": rows}
    path = save("readoff_cost", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"a read-off of {args.space} at {args.resolution} px on {args.data}, one thread, "
                        f"median of {args.candidates} random networks ({path})")
    for column in ("MFLOP/image", "images", "GFLOP", "build s", "calibration s", "validation s", "total s",
                   "GFLOP/s reached", "matmul GFLOP/s", f"GFLOP/s for {TARGET_S} s"):
        table.add_column(column)
    table.add_row(f"{median['mflop_per_image']:.1f}", f"{median['images']:.0f}", f"{median['gflop']:.1f}", f"{median['build_s']:.2f}",
                  f"{median['calibration_s']:.2f}", f"{median['validation_s']:.2f}", f"{median['total_s']:.2f}",
                  f"{median['gflop_per_s']:.1f}", f"{peak:.1f}", f"{figures['needed_gflop_per_s']:.1f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
