"""Real latency on this machine: batch 1, eval and inference mode, median of repeated runs.

Only one process on a machine measures at a time (a file lock): two measurements on shared
cores disturb each other, and the search would learn the noise.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

from nas.errors import UsageError

LOCK_PATH = Path(tempfile.gettempdir()) / "nas-latency.lock"


@dataclass(frozen=True)
class LatencySettings:
    resolution: int = 224
    threads: int = 1
    warmup: int = 10
    repeats: int = 30
    batch: int = 1
    backend: str = "torch-cpu"

    def __post_init__(self) -> None:
        if not 32 <= self.resolution <= 1024:
            raise UsageError(f"--resolution must be between 32 and 1024 pixels, got {self.resolution}")
        if not 1 <= self.threads <= (os.cpu_count() or 1):
            raise UsageError(f"--threads must be between 1 and {os.cpu_count()} on this machine, got {self.threads}")
        if self.repeats < 3 or self.warmup < 0:
            raise UsageError("latency needs at least 3 timed runs and a non-negative warm-up")


@dataclass(frozen=True)
class Measurement:
    latency_ms: float  # median
    spread_ms: float  # interquartile range of the timed runs
    runs: int
    load_avg: float  # 1-minute load average when measured: high values flag a busy machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_fingerprint(settings: LatencySettings) -> dict[str, object]:
    """What a latency depends on; two numbers are comparable only if these are equal."""
    return {
        "cpu": cpu_model(),
        "threads": settings.threads,
        "backend": settings.backend,
        "torch": torch.__version__.split("+")[0],
        "resolution": settings.resolution,
        "batch": settings.batch,
    }


def measure_latency(model: torch.nn.Module, settings: LatencySettings) -> Measurement:
    """Median and spread of ``settings.repeats`` timed forward passes after a warm-up."""
    model = model.eval()
    x = torch.randn(settings.batch, 3, settings.resolution, settings.resolution)
    previous_threads = torch.get_num_threads()
    with FileLock(str(LOCK_PATH)):
        torch.set_num_threads(settings.threads)
        try:
            with torch.inference_mode():
                for _ in range(settings.warmup):
                    model(x)
                times = []
                for _ in range(settings.repeats):
                    start = time.perf_counter()
                    model(x)
                    times.append((time.perf_counter() - start) * 1e3)
        finally:
            torch.set_num_threads(previous_threads)
    q1, _, q3 = statistics.quantiles(times, n=4)
    return Measurement(statistics.median(times), q3 - q1, len(times), os.getloadavg()[0])
