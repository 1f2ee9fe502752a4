"""What a latency is for: the measuring settings, one measurement, and the device fingerprint.

Two latencies compare only when their fingerprints are equal, so every stored latency (a trial's,
a table's entry) carries one, and a table is never used for another fingerprint.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas.errors import UsageError
from nas.latency.allocator import check_allocator, effective_allocator
from storage import read_device

BACKENDS = {"torch": "torch-cpu", "onnxruntime": "onnxruntime-cpu", "cuda": "torch-cuda"}  # flag -> stored name


@dataclass(frozen=True)
class LatencySettings:
    resolution: int = 224
    threads: int = 1
    warmup: int = 10
    repeats: int = 30
    batch: int = 1
    backend: str = "torch-cpu"
    passes: int = 3  # the fastest of this many pass medians (see measure_latency)
    allocator: str = "kept"  # glibc keeps freed memory (``kept``) or runs as a plain process (``default``)

    def __post_init__(self) -> None:
        if not 32 <= self.resolution <= 1024:
            raise UsageError(f"--resolution must be between 32 and 1024 pixels, got {self.resolution}")
        if not 1 <= self.threads <= (os.cpu_count() or 1):
            raise UsageError(f"--threads must be between 1 and {os.cpu_count()} on this machine, got {self.threads}")
        if self.repeats < 3 or self.warmup < 0 or self.passes < 1:
            raise UsageError("latency needs at least 3 timed runs, one pass and a non-negative warm-up")
        if self.backend not in BACKENDS.values():
            raise UsageError(f"--backend: unknown {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.backend == "torch-cuda" and not torch.cuda.is_available():
            raise UsageError("--backend cuda: no CUDA device on this machine; use torch or onnxruntime")
        check_allocator(self.allocator)

    @classmethod
    def for_backend(cls, flag: str, **fields: object) -> LatencySettings:
        """Settings from the CLI's short backend name (torch, onnxruntime, cuda)."""
        if flag not in BACKENDS:
            raise UsageError(f"--backend: unknown {flag!r}; choose one of {', '.join(BACKENDS)}")
        return cls(backend=BACKENDS[flag], **fields)  # type: ignore[arg-type]

    @classmethod
    def from_fingerprint(cls, fingerprint: dict[str, Any]) -> LatencySettings:
        """The settings a stored table was measured with (to measure more of its layers alike); a
        preloaded allocator is not chosen by a flag, so its tables are measured further as ``kept``."""
        fingerprint = read_device(fingerprint)
        allocator = fingerprint["allocator"] if fingerprint["allocator"] in ("kept", "default") else "kept"
        return cls(resolution=int(fingerprint["resolution"]), threads=int(fingerprint["threads"]),
                   backend=str(fingerprint["backend"]), batch=int(fingerprint["batch"]), passes=int(fingerprint["passes"]),
                   allocator=allocator)


@dataclass(frozen=True)
class Measurement:
    latency_ms: float  # the fastest pass's median
    spread_ms: float  # interquartile range of that pass's timed runs
    runs: int
    load_avg: float  # 1-minute load average when measured: high values flag a busy machine
    pass_ms: tuple[float, ...] = ()  # each pass's median, in order: their spread is the run-to-run noise


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
    fingerprint: dict[str, object] = {
        "cpu": cpu_model(),
        "threads": settings.threads,
        "backend": settings.backend,
        "torch": torch.__version__.split("+")[0],
        "resolution": settings.resolution,
        "batch": settings.batch,
        "passes": settings.passes,
        "allocator": effective_allocator(settings.allocator),
    }
    if settings.backend == "onnxruntime-cpu":
        import onnxruntime

        fingerprint["onnxruntime"] = onnxruntime.__version__
    elif settings.backend == "torch-cuda":
        fingerprint["gpu"] = torch.cuda.get_device_name()
        fingerprint["cuda"] = torch.version.cuda
    return fingerprint


def describe(fingerprint: dict[str, Any]) -> str:
    """A fingerprint in one line, for messages (one stored before allocators were recorded was ``kept``)."""
    fingerprint = read_device(fingerprint)
    return (f"{fingerprint['cpu']}, {fingerprint['backend']}, {fingerprint['threads']} thread(s), "
            f"{fingerprint['resolution']} px, batch {fingerprint['batch']}, allocator {fingerprint['allocator']}")
