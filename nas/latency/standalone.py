"""Time an exported network as a deployment runs it: run as a script in a fresh process.

Imports only the standard library and the network's runtime (torch for TorchScript, onnxruntime
for ONNX; timm and ``nas.timm_models`` for a timm folder, which needs them to build), so nothing
nas loads or sets in its own process (glibc's thresholds, thread pools) reaches the figure.
The protocol is ``measure_latency``'s: batch 1, ``passes`` passes of ``warmup`` runs then
``repeats`` timed runs, the fastest pass median. Prints one JSON object.

    python -P standalone.py MODEL --threads 1 --resolution 224 --warmup 10 --repeats 30 --passes 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path


def torchscript_runner(path: Path, resolution: int, threads: int) -> tuple[Callable[[], object], dict]:
    import torch

    torch.set_num_threads(threads)
    model = torch.jit.load(str(path)).eval()
    x = torch.randn(1, 3, resolution, resolution)

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run, {"runtime": "torch", "runtime_version": torch.__version__.split("+")[0], "resolution": resolution}


def timm_runner(path: Path, resolution: int, threads: int) -> tuple[Callable[[], object], dict]:
    import timm
    import torch

    import nas.timm_models  # noqa: F401  registers the entrypoint the folder's config.json names

    torch.set_num_threads(threads)
    model = timm.create_model(f"local-dir:{path.resolve()}", pretrained=True).eval()
    x = torch.randn(1, 3, resolution, resolution)

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run, {"runtime": "torch", "runtime_version": torch.__version__.split("+")[0], "resolution": resolution}


def onnx_runner(path: Path, resolution: int, threads: int) -> tuple[Callable[[], object], dict]:
    """Sequential execution with all graph optimisations, as nas's onnxruntime backend times."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    node = session.get_inputs()[0]
    height, width = (d if isinstance(d, int) else resolution for d in node.shape[2:])
    feed = {node.name: np.random.default_rng(0).standard_normal((1, 3, height, width), dtype=np.float32)}
    return (lambda: session.run(None, feed)), {"runtime": "onnxruntime", "runtime_version": onnxruntime.__version__,
                                               "resolution": height}


def runner_for(path: Path) -> Callable[[Path, int, int], tuple[Callable[[], object], dict]]:
    if path.is_dir():
        return timm_runner
    return onnx_runner if path.suffix == ".onnx" else torchscript_runner


def time_passes(run: Callable[[], object], warmup: int, repeats: int, passes: int) -> list[list[float]]:
    timed = []
    for _ in range(passes):
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        timed.append(times)
    return timed


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args(argv)
    run, facts = runner_for(args.model)(args.model, args.resolution, args.threads)
    passes = time_passes(run, args.warmup, args.repeats, args.passes)
    medians = [statistics.median(times) for times in passes]
    best = passes[medians.index(min(medians))]
    q1, _, q3 = statistics.quantiles(best, n=4)
    print(json.dumps({**facts, "latency_ms": min(medians), "spread_ms": q3 - q1, "pass_ms": medians,
                      "threads": args.threads}))


if __name__ == "__main__":
    main(sys.argv[1:])
