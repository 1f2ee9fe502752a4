"""Latency as deployed: what an export says about its speed, and timing the exported file for real.

nas's figure holds only under the condition it was measured in (the runtime, its threads and the
memory allocator: glibc's defaults made networks 1.5-2x slower here). So an export carries a
``Deployment`` record (inside the file, and as a ``DEPLOY.md`` beside it) with nas's figure, the
device fingerprint and the environment that reproduces it; ``check_deployed`` times the file in a
fresh process with only its runtime loaded (``standalone.py``) and sets the two figures side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nas.errors import NasError, UsageError
from nas.latency.allocator import KEPT_ENVIRONMENT, deployment_environment, environment_allocator
from nas.latency.measure import measure_latency
from nas.latency.settings import LatencySettings, describe, device_fingerprint
from nas.turns import measuring
from storage import read_device

RUNTIMES = {"onnx": "onnxruntime", "torchscript": "torch", "timm": "torch"}  # export format -> what runs it
BACKEND_OF_RUNTIME = {"onnxruntime": "onnxruntime", "torch": "torch"}  # runtime -> nas's --backend
METADATA_KEY = "nas_deployment"  # the record's name inside an ONNX file, a TorchScript archive, a timm config.json
STANDALONE = Path(__file__).with_name("standalone.py")
# variables that change a deployed latency, reported with every check
RELEVANT_VARIABLES = (*KEPT_ENVIRONMENT, "GLIBC_TUNABLES", "LD_PRELOAD", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class Deployment:
    """nas's latency for an exported network, and the condition under which it holds."""

    name: str
    format: str
    runtime: str  # torch | onnxruntime
    runtime_version: str
    latency_ms: float  # nas's measurement: the fastest pass median
    spread_ms: float
    device: dict[str, Any]  # the fingerprint it was measured on (allocator included)
    environment: dict[str, str]  # variables that reproduce the allocator and thread count

    @property
    def threads(self) -> int:
        return int(self.device["threads"])

    @property
    def resolution(self) -> int:
        return int(self.device["resolution"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployment:
        return cls(**{**data, "device": read_device(data["device"])})


def deployment_settings(fmt: str, resolution: int, threads: int = 1, allocator: str = "kept") -> LatencySettings:
    """How nas measures a network exported as ``fmt``: with the runtime that will run it."""
    return LatencySettings.for_backend(BACKEND_OF_RUNTIME[RUNTIMES[fmt]], resolution=resolution, threads=threads,
                                       allocator=allocator)


def measure_deployment(name: str, model: torch.nn.Module, fmt: str, settings: LatencySettings) -> Deployment:
    """nas's figure for ``model`` exported as ``fmt``, measured now on this device."""
    measured = measure_latency(model, settings)
    device = device_fingerprint(settings)
    runtime = RUNTIMES[fmt]
    version = device.get("onnxruntime") if runtime == "onnxruntime" else device["torch"]
    return Deployment(name, fmt, runtime, str(version), measured.latency_ms, measured.spread_ms, device,
                      deployment_environment(device["allocator"], settings.threads))


def notes_path(model_path: Path) -> Path:
    """``DEPLOY.md`` inside an exported folder, ``MODEL.DEPLOY.md`` beside an exported file (two
    exports in one folder keep their own)."""
    return model_path / "DEPLOY.md" if model_path.is_dir() else model_path.with_name(model_path.name + ".DEPLOY.md")


def deploy_markdown(deployment: Deployment, model_path: Path) -> str:
    """The short page an export writes beside the model."""
    env = " ".join(f"{k}={v}" for k, v in deployment.environment.items())
    unset = [k for k in KEPT_ENVIRONMENT if k not in deployment.environment]
    device = "\n".join(f"| {k} | {v} |" for k, v in deployment.device.items())
    allocator = deployment.device["allocator"]
    why = {"kept": "glibc keeps freed memory for reuse (its mmap and trim thresholds raised); with glibc's defaults "
                   "every forward pass page-faults its activations in again, 1.5-2x slower on nas's test machine",
           "default": "glibc's default allocator, as a plain process runs",
           }.get(allocator, f"{allocator} preloaded (LD_PRELOAD) in place of glibc's allocator")
    return f"""# Deploying {deployment.name}

nas measured **{deployment.latency_ms:.2f} ms** (interquartile range {deployment.spread_ms:.2f} ms) for this network:
batch 1, {deployment.resolution}x{deployment.resolution} px, {deployment.runtime} {deployment.runtime_version},
{deployment.threads} thread(s), allocator `{allocator}`: {why}.

That figure holds where the same condition holds. Run the model with this environment:

```
{env}{"" if not unset else "   # and without " + ", ".join(unset)}
```

and {deployment.threads} intra-op thread(s) (`torch.set_num_threads({deployment.threads})`, or ONNX Runtime's
`intra_op_num_threads = {deployment.threads}`).

Check it where you deploy (a fresh process, only the runtime loaded, this environment or yours):

```
{env} nas latency check {model_path.name}
```

## Device fingerprint

| field | value |
|---|---|
{device}
"""


def write_notes(deployment: Deployment, model_path: Path) -> Path:
    path = notes_path(model_path)
    path.write_text(deploy_markdown(deployment, model_path))
    return path


def read_deployment(model_path: Path) -> Deployment | None:
    """The record an export put inside the model (None for a model nas did not export)."""
    text: str | None = None
    if model_path.is_dir():
        config = model_path / "config.json"
        data = json.loads(config.read_text()).get(METADATA_KEY) if config.is_file() else None
        return Deployment.from_dict(data) if data else None
    if model_path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(model_path), load_external_data=False)
        text = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    elif zipfile.is_zipfile(model_path):  # a TorchScript archive keeps extra files under */extra/
        with zipfile.ZipFile(model_path) as archive:
            name = next((n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_KEY}.json")), None)
            text = archive.read(name).decode() if name else None
    return Deployment.from_dict(json.loads(text)) if text else None


@dataclass(frozen=True)
class DeployedCheck:
    """An exported network timed as deployed, beside nas's figure for it."""

    model: str
    runtime: str
    runtime_version: str
    latency_ms: float
    spread_ms: float
    pass_ms: list[float]
    threads: int
    resolution: int
    allocator: str  # what the environment it ran in gives: kept, default, jemalloc, tcmalloc
    environment: dict[str, str]  # the variables of that environment that change latency
    nas_ms: float | None  # nas's figure stored in the export, None for a model nas did not export
    nas_device: dict[str, Any] | None
    ratio: float | None  # deployed / nas

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        line = (f"{self.model}: {self.latency_ms:.2f} ms deployed ({self.runtime} {self.runtime_version}, "
                f"{self.threads} thread(s), {self.resolution} px, allocator {self.allocator})")
        if self.nas_ms is None:
            return line + "; no figure of nas's inside this model to compare (export it with `nas export`)"
        return (line + f"; nas measured {self.nas_ms:.2f} ms on {describe(self.nas_device or {})}: "
                       f"ratio {self.ratio:.2f}")


def check_deployed(model_path: Path, env: Mapping[str, str] | None = None, *, threads: int | None = None,
                   resolution: int | None = None, warmup: int = 10, repeats: int = 30, passes: int = 3) -> DeployedCheck:
    """Time ``model_path`` in a fresh process started with ``env`` (default: this one's)."""
    if repeats < 3 or passes < 1 or warmup < 0:
        raise UsageError("latency needs at least 3 timed runs, one pass and a non-negative warm-up")
    if not model_path.exists():
        raise UsageError(f"no model at {model_path}; export one with `nas export REF --format onnx|torchscript|timm`")
    if model_path.is_dir() and not (model_path / "config.json").is_file():
        raise UsageError(f"{model_path} is a folder without config.json; pass a timm folder `nas export --format timm` wrote")
    deployment = read_deployment(model_path)
    threads = threads or (deployment.threads if deployment else 1)
    resolution = resolution or (deployment.resolution if deployment else 224)
    env = dict(os.environ if env is None else env)
    command = [sys.executable, "-P", str(STANDALONE), str(model_path), "--threads", str(threads), "--resolution",
               str(resolution), "--warmup", str(warmup), "--repeats", str(repeats), "--passes", str(passes)]
    with measuring():  # the machine held for the measurement, as for nas's own
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise NasError(f"timing {model_path} in a fresh process failed: {last}")
    timed = json.loads(proc.stdout.strip().splitlines()[-1])
    nas_ms = deployment.latency_ms if deployment else None
    return DeployedCheck(model_path.name, timed["runtime"], timed["runtime_version"], timed["latency_ms"],
                         timed["spread_ms"], timed["pass_ms"], threads, timed["resolution"], environment_allocator(env),
                         {k: env[k] for k in RELEVANT_VARIABLES if k in env}, nas_ms,
                         deployment.device if deployment else None,
                         timed["latency_ms"] / nas_ms if nas_ms else None)
