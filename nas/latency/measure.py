"""Real latency on this machine: batch 1, eval and inference mode, median of repeated runs.

Three backends: torch eager on the CPU (the default: what nas trains with, no export step),
ONNX Runtime on the CPU (what many deploy with; 2-3x faster here because torch's per-op
overhead disappears) and torch on CUDA (timed with device events after synchronising).
A measurement holds the machine (``nas.turns``): no other measurement, and no training step of
another nas process, runs on it meanwhile; either would disturb it, and the search would learn the noise.

Tables, calibration and validation time through a ``Timer``: ``DEVICE`` measures for real, and a
test passes one that returns known times, so what is computed from the times is checked exactly.
"""

from __future__ import annotations

import io
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import torch

from nas.latency.allocator import use_allocator
from nas.latency.layers import Layer
from nas.latency.settings import LatencySettings, Measurement
from nas.turns import measuring
from search_spaces import Genotype


@contextmanager
def _torch_cpu(model: torch.nn.Module, x: torch.Tensor, settings: LatencySettings) -> Iterator[Callable[[], float]]:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        with torch.inference_mode():
            yield lambda: _wall_ms(lambda: model(x))
    finally:
        torch.set_num_threads(previous_threads)


@contextmanager
def _onnxruntime_cpu(model: torch.nn.Module, x: torch.Tensor, settings: LatencySettings) -> Iterator[Callable[[], float]]:
    """Export with torch's TorchScript-based ONNX exporter and run in ONNX Runtime on the CPU.

    The TorchScript exporter, not the dynamo one: it is ~7x faster to export (a table exports
    thousands of blocks) and gives the same graph for these convolutional networks once ONNX
    Runtime has fused it.
    """
    import onnxruntime

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    yield lambda: _wall_ms(lambda: session.run(None, feed))


@contextmanager
def _torch_cuda(model: torch.nn.Module, x: torch.Tensor, settings: LatencySettings) -> Iterator[Callable[[], float]]:
    """CUDA launches are asynchronous: time between device events, synchronised on both sides."""
    device = torch.device("cuda")
    model, x = model.to(device), x.to(device)

    def timed() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        model(x)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)

    with torch.inference_mode():
        yield timed


def _wall_ms(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1e3


_MEASURE = {"torch-cpu": _torch_cpu, "onnxruntime-cpu": _onnxruntime_cpu, "torch-cuda": _torch_cuda}


def measure_latency(model: torch.nn.Module, settings: LatencySettings,
                    input_shape: tuple[int, ...] | None = None) -> Measurement:
    """The fastest of ``settings.passes`` pass medians, each of ``repeats`` timed forward passes
    after a warm-up. Interference only ever adds time, and on a shared host it comes in bursts
    that can outlast a whole pass; the quietest pass is the device's own speed (as ``timeit``
    advises: the minimum of repeats, each a median here).

    ``input_shape`` defaults to a batch of RGB images at ``settings.resolution``; a latency table
    passes each layer's own input shape.
    """
    use_allocator(settings.allocator)
    model = model.eval()
    shape = input_shape or (settings.batch, 3, settings.resolution, settings.resolution)
    x = torch.randn(*shape)
    passes = []
    with measuring(), _MEASURE[settings.backend](model, x, settings) as timed:
        for _ in range(settings.passes):
            for _ in range(settings.warmup):
                timed()
            passes.append([timed() for _ in range(settings.repeats)])
    medians = [statistics.median(times) for times in passes]
    best = min(range(len(passes)), key=medians.__getitem__)
    q1, _, q3 = statistics.quantiles(passes[best], n=4)
    return Measurement(medians[best], q3 - q1, settings.repeats * settings.passes, os.getloadavg()[0], tuple(medians))


class Timer(Protocol):
    """How a table times what it learns from: one layer (as built, at its input shape) or one
    whole network. The module is passed built, so its weights are counted from the same object."""

    def layer(self, layer: Layer, module: torch.nn.Module, settings: LatencySettings) -> Measurement: ...

    def network(self, genotype: Genotype, model: torch.nn.Module, settings: LatencySettings) -> Measurement: ...


class DeviceTimer:
    """Measures on this machine with ``measure_latency``."""

    def layer(self, layer: Layer, module: torch.nn.Module, settings: LatencySettings) -> Measurement:
        return measure_latency(module, settings, layer.input_shape(settings.batch))

    def network(self, genotype: Genotype, model: torch.nn.Module, settings: LatencySettings) -> Measurement:
        return measure_latency(model, settings)


DEVICE: Timer = DeviceTimer()
