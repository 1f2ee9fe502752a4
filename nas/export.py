"""Getting a network out of nas: an architecture file, a timm folder, ONNX or TorchScript.

Every format that carries weights is read back after writing and run on the same input as the
torch model (onnxruntime for ONNX, ``torch.jit.load`` for TorchScript, ``timm.create_model`` for
the timm folder); an export whose outputs differ by more than ``TOLERANCE`` is an error, not a file.
Weights come from a ``nas train`` checkpoint when the reference is one, else from a seeded
initialisation (the same file every time). A model export carries nas's latency for it and the
environment that reproduces it (``nas.latency.deployment``): inside the file and as ``DEPLOY.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nas.architecture import Architecture, write_architecture
from nas.checkpoint import CHECKPOINT_NAME, load_checkpoint, prefixed
from nas.errors import NasError, UsageError
from nas.files import replace_atomically
from nas.latency.deployment import METADATA_KEY, Deployment, deployment_settings, measure_deployment, write_notes
from nas.recipe import check_input_size
from nas.timm_models import ENTRYPOINT, model_args, pretrained_cfg, timm_name
from search_spaces import build_model
from storage import Store

FORMATS = {
    "json": "architecture file (arch_def, stem, head, resolution, provenance): timm alone builds it",
    "timm": "folder with config.json + model.safetensors: timm.create_model('local-dir:FOLDER', pretrained=True)",
    "onnx": "ONNX (torch.onnx dynamo exporter), batch dimension dynamic; checked with onnxruntime",
    "torchscript": "TorchScript (torch.jit.trace); checked with torch.jit.load",
}
SUFFIXES = {"json": ".json", "timm": "", "onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-4
INIT_SEED = 0


@dataclass(frozen=True)
class Network:
    """An architecture with the weights it is exported or trained with."""

    arch: Architecture
    model: torch.nn.Module
    norm: str = "bn"
    trained: bool = False  # weights from a checkpoint, not a fresh initialisation


@dataclass(frozen=True)
class ExportResult:
    """What was written (``nas export --json`` prints these fields)."""

    format: str
    path: Path
    resolution: int
    num_classes: int
    trained: bool
    max_abs_diff: float | None  # read back and run vs torch; None for json (no weights)
    latency_ms: float | None = None  # nas's figure for the exported model with its runtime (None for json)
    deploy_notes: Path | None = None  # DEPLOY.md: that figure, the device and the environment reproducing it


def checkpoint_path(ref: str | Path) -> Path | None:
    """The checkpoint ``ref`` names (a ``nas train`` folder or the file itself), or None."""
    path = Path(ref)
    if path.is_dir() and (path / CHECKPOINT_NAME).is_file():
        return path / CHECKPOINT_NAME
    return path if path.is_file() and path.suffix == ".safetensors" else None


def usable_architecture(ref: str, store: Store, study: str | None = None) -> Architecture:
    """``resolve_architecture``, refusing a failed trial: it has no result to build on."""
    from nas.results import resolve_architecture

    arch = resolve_architecture(ref, store, study)
    if arch.provenance.get("state") == "FAIL":
        raise UsageError(f"trial {arch.provenance['trial']} of {arch.provenance['study']!r} is a FAIL trial; "
                         "pick a completed one (`nas trials`)")
    return arch


def load_network(ref: str, store: Store, study: str | None = None, num_classes: int = 1000) -> Network:
    """The network ``ref`` names: a checkpoint with its trained weights, else a seeded initialisation."""
    ckpt = checkpoint_path(ref)
    if ckpt is None:
        arch = usable_architecture(ref, store, study)
        torch.manual_seed(INIT_SEED)
        return Network(arch, build_model(arch.genotype, num_classes=num_classes).eval())
    tensors, state = load_checkpoint(ckpt)
    try:
        arch = Architecture.from_dict(state["architecture"], name=state["architecture"].get("name", ckpt.stem))
        model = build_model(arch.genotype, num_classes=state["num_classes"], norm=state["norm"])
        weights = prefixed(tensors, "ema") or prefixed(tensors, "model")
        model.load_state_dict(weights)
    except (KeyError, ValueError, TypeError, RuntimeError) as err:
        raise UsageError(f"{ckpt}: not a checkpoint of a nas architecture: {str(err).splitlines()[0]}") from None
    return Network(arch, model.eval(), state["norm"], trained=True)


def export(network: Network, fmt: str, path: Path | None = None, resolution: int | None = None, *, threads: int = 1,
           allocator: str = "kept") -> ExportResult:
    """Write ``network`` in ``fmt`` to ``path`` (default: its timm name in the working directory);
    a model is timed first with its runtime (``threads``, ``allocator``) and carries the figure."""
    if fmt not in FORMATS:
        raise UsageError(f"--format: unknown {fmt!r}; choose one of {', '.join(FORMATS)}")
    arch = network.arch
    resolution = resolution or arch.input_size()
    check_input_size(resolution, arch.genotype.total_stride)
    path = path or Path(timm_name(arch) + SUFFIXES[fmt])
    num_classes = network.model.num_classes
    if fmt == "json":
        write_architecture(arch, path)
        return ExportResult(fmt, path, resolution, num_classes, network.trained, None)
    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = network.model(x)
    runnable = _trace(network.model, x) if fmt == "torchscript" else network.model
    deployment = measure_deployment(arch.name, runnable, fmt, deployment_settings(fmt, resolution, threads, allocator))
    writer = {"timm": _write_timm, "onnx": _write_onnx, "torchscript": _write_torchscript}[fmt]
    got = writer(replace(network, model=runnable), path, x, resolution, deployment)
    diff = float((got - expected).abs().max())
    if not diff <= TOLERANCE:
        raise NasError(f"{fmt} export of {arch.name} differs from torch by {diff:.2e} (> {TOLERANCE:g}); not kept")
    return ExportResult(fmt, path, resolution, num_classes, network.trained, diff, deployment.latency_ms,
                        write_notes(deployment, path))


def timm_config(network: Network, resolution: int) -> dict[str, Any]:
    """timm's ``config.json`` (architecture, model_args, pretrained_cfg) plus our architecture file."""
    return {"architecture": ENTRYPOINT, "num_classes": network.model.num_classes,
            "num_features": network.model.num_features, "model_args": model_args(network.arch, network.norm),
            "pretrained_cfg": pretrained_cfg(resolution, num_classes=network.model.num_classes),
            "nas": network.arch.to_dict()}


def _write_timm(network: Network, path: Path, x: torch.Tensor, resolution: int, deployment: Deployment) -> torch.Tensor:
    import timm
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in network.model.state_dict().items()}
    replace_atomically(lambda tmp: save_file(tensors, tmp), path / "model.safetensors")
    text = json.dumps({**timm_config(network, resolution), METADATA_KEY: deployment.to_dict()}, indent=2) + "\n"
    replace_atomically(lambda tmp: Path(tmp).write_text(text), path / "config.json")
    loaded = timm.create_model(f"local-dir:{path.resolve()}", pretrained=True).eval()
    with torch.inference_mode():
        return loaded(x)


def _write_onnx(network: Network, path: Path, x: torch.Tensor, resolution: int, deployment: Deployment) -> torch.Tensor:
    import logging
    import warnings

    import onnxruntime

    batch = torch.export.Dim("batch", min=1, max=1024)

    def write(tmp: str) -> None:
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(network.model, (x,), dynamo=True, input_names=["input"],
                                        output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False)
        program.model.metadata_props[METADATA_KEY] = json.dumps(deployment.to_dict())
        program.save(tmp)

    replace_atomically(write, path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def _trace(model: torch.nn.Module, x: torch.Tensor) -> torch.jit.ScriptModule:
    """The TorchScript graph a ``.pt`` export holds. nas times this graph, not the eager module:
    TorchScript ran these networks 10-37% faster than eager torch here (bench/deployed_latency.py)."""
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, yet still loads everywhere
        return torch.jit.trace(model, x)


def _write_torchscript(network: Network, path: Path, x: torch.Tensor, resolution: int, deployment: Deployment) -> torch.Tensor:
    """``network.model`` is already traced (``_trace``)."""
    extra = {f"{METADATA_KEY}.json": json.dumps(deployment.to_dict())}
    replace_atomically(lambda tmp: torch.jit.save(network.model, tmp, _extra_files=extra), path)
    loaded = torch.jit.load(str(path))
    with torch.inference_mode():
        return loaded(x)
