"""Re-training a network outside the search, with timm's optimizer, scheduler, MixUp and EMA.

``auto`` settings follow BiT-HyperRule (Kolesnikov et al. 2019): the schedule length and MixUp
from the number of training images, the resolution from the image size. BiT takes 500 / 10k /
20k steps of 512 images for < 20k / < 500k / more images; nas takes the same number of steps at
``batch_size`` (a CPU budget), with BiT's shape: linear warm-up (100 of 500 steps, else 500), then
the learning rate divided by 10 at 30, 60 and 90% of the steps. Images under 96x96 train at 128
(random crops of 160), larger ones at 384 (crops of 448); MixUp alpha 0.1 from 20k images on.

Every epoch ends in an atomic checkpoint. All randomness of an epoch (data order, crops, MixUp,
dropout) is drawn from generators seeded by (seed, epoch), so ``resume`` from a checkpoint ends
with the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2, list_optimizers
from timm.scheduler import MultiStepLRScheduler
from timm.utils import ModelEmaV3

from nas.architecture import Architecture
from nas.checkpoint import load_checkpoint, pack_optimizer, prefixed, save_checkpoint, unpack_optimizer
from nas.data import IMAGE_SUFFIXES, ProxyData, load_proxy_data
from nas.errors import DataError, TrainingDiverged, UsageError
from nas.latency import LatencySettings, Measurement, device_fingerprint, measure_latency
from nas.proxy import evaluate
from search_spaces import build_model

CHECKPOINT_NAME = "checkpoint.safetensors"
BUILTIN_IMAGE_SIZE = {"digits": 8, "mnist": 28}
NORMS = ("bn", "gn-ws")


@dataclass(frozen=True)
class HyperRule:
    """What BiT-HyperRule picks for a dataset."""

    steps: int
    warmup_steps: int
    resolution: int
    precrop: int  # training crops are taken from images resized to this
    mixup: float


def bit_hyperrule(train_images: int, image_size: int) -> HyperRule:
    """BiT-HyperRule from the number of training images and their (median) side in pixels."""
    if train_images < 20_000:
        steps, warmup, mixup = 500, 100, 0.0
    elif train_images < 500_000:
        steps, warmup, mixup = 10_000, 500, 0.1
    else:
        steps, warmup, mixup = 20_000, 500, 0.1
    resolution, precrop = (128, 160) if image_size * image_size < 96 * 96 else (384, 448)
    return HyperRule(steps, warmup, resolution, precrop, mixup)


@dataclass(frozen=True)
class TrainSettings:
    """A training recipe; ``None`` for epochs, resolution or mixup means BiT-HyperRule's choice."""

    data: str = "digits"
    epochs: int | None = None
    resolution: int | None = None
    mixup: float | None = None
    norm: str = "bn"
    batch_size: int = 64
    opt: str = "adamw"  # any timm optimizer; BiT fine-tunes with "momentum" at lr 0.003
    lr: float = 3e-3
    weight_decay: float = 0.05
    ema_decay: float | None = 0.998  # timm ModelEmaV3 with warm-up; None: no EMA
    seed: int = 0
    init: str | None = None  # fine-tune: start from this nas checkpoint's weights (a new head if classes differ)
    latency: LatencySettings = field(default_factory=LatencySettings)

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1 or auto, got {self.epochs}")
        if self.resolution is not None and not 8 <= self.resolution <= 1024:
            raise UsageError(f"--resolution must be between 8 and 1024 pixels or auto, got {self.resolution}")
        if self.mixup is not None and not 0 <= self.mixup <= 10:
            raise UsageError(f"--mixup must be an alpha between 0 and 10 or auto, got {self.mixup}")
        if self.norm not in NORMS:
            raise UsageError(f"--norm: unknown {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.batch_size < 2 or self.batch_size % 2:
            raise UsageError(f"--batch-size must be even and >= 2 (MixUp pairs images), got {self.batch_size}")
        if self.opt not in list_optimizers():
            raise UsageError(f"--opt: unknown {self.opt!r}; timm knows e.g. adamw, sgd, momentum, lamb, rmsproptf")
        if not self.lr > 0 or self.weight_decay < 0:
            raise UsageError("--lr must be > 0 and --weight-decay >= 0")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise UsageError(f"--ema-decay must be between 0 and 1, got {self.ema_decay}")

    def recipe(self) -> dict[str, Any]:
        """What decides the weights (a resume must match it); latency settings do not."""
        return {k: v for k, v in asdict(self).items() if k != "latency"}


@dataclass(frozen=True)
class Plan:
    """The recipe with every ``auto`` resolved for one dataset."""

    epochs: int
    batch_size: int
    steps_per_epoch: int
    warmup_steps: int
    resolution: int
    precrop: int
    mixup: float
    train_images: int
    image_size: int

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass(frozen=True)
class Model:
    """What ``train`` trains: a name, a seeded factory, and how latency and MACs see it."""

    name: str
    make: Callable[[int], torch.nn.Module]  # num_classes -> a fresh module (3 input channels)
    description: dict[str, Any]  # JSON that says what the network is (stored in the checkpoint)
    total_stride: int = 32
    resolution: int = 224  # the input size its latency is measured at


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    loss: float
    accuracy: float


@dataclass(frozen=True)
class TrainResult:
    name: str
    accuracy: float
    plan: Plan
    history: list[EpochRecord]
    checkpoint: Path
    latency: Measurement
    params: int
    macs: int
    dataset: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "accuracy": self.accuracy, "plan": asdict(self.plan),
                "history": [asdict(r) for r in self.history], "checkpoint": str(self.checkpoint),
                "latency_ms": self.latency.latency_ms, "latency_spread_ms": self.latency.spread_ms,
                "params": self.params, "macs": self.macs, "dataset": self.dataset}


class TrainObserver(Protocol):
    """What a front end (the CLI's progress bar) hears from a training run."""

    def started(self, plan: Plan, resumed_epoch: int) -> None: ...

    def step(self, epoch: int, step_in_epoch: int) -> None: ...

    def epoch_done(self, record: EpochRecord) -> None: ...


def image_size(source: str) -> int:
    """Median side of the dataset's images (BiT-HyperRule's resolution depends on it)."""
    if source in BUILTIN_IMAGE_SIZE:
        return BUILTIN_IMAGE_SIZE[source]
    from PIL import Image, UnidentifiedImageError

    root = Path(source).expanduser()
    sides = []
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            with Image.open(path) as img:
                sides.append(math.sqrt(img.size[0] * img.size[1]))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"--data {root}: cannot read image {path}: {err}") from None
    if not sides:
        load_proxy_data(source, 8)  # raises the data module's own one-line error
    return round(statistics.median(sides))


def make_plan(settings: TrainSettings, data_source: str, total_stride: int) -> tuple[Plan, ProxyData]:
    """Resolve ``auto`` settings against the data; loads the data at the training resolution."""
    size = image_size(data_source)
    rule = bit_hyperrule(10**9, size)  # resolution only depends on the image size
    resolution = settings.resolution or rule.resolution
    if resolution < total_stride or resolution % total_stride:
        below, above = max(total_stride, resolution // total_stride * total_stride), (resolution // total_stride + 1) * total_stride
        raise UsageError(f"--resolution {resolution} is not divisible by the network's total stride {total_stride}; "
                         f"use {below} or {above}")
    data = load_proxy_data(data_source, resolution)
    rule = bit_hyperrule(len(data.x_train), size)
    batch = min(settings.batch_size, len(data.x_train) // 2 * 2)
    steps_per_epoch = len(data.x_train) // batch
    epochs = settings.epochs or math.ceil(rule.steps / steps_per_epoch)
    steps = epochs * steps_per_epoch
    warmup = min(round(steps * rule.warmup_steps / rule.steps), steps - 1)
    precrop = round(resolution * rule.precrop / rule.resolution)
    mixup = rule.mixup if settings.mixup is None else settings.mixup
    return Plan(epochs, batch, steps_per_epoch, warmup, resolution, precrop, mixup, len(data.x_train), size), data


def _random_crop(x: torch.Tensor, plan: Plan, generator: torch.Generator) -> torch.Tensor:
    """BiT's training crop: resize to ``precrop``, then a random ``resolution`` square per image."""
    if plan.precrop == plan.resolution:
        return x
    x = F.interpolate(x, size=(plan.precrop, plan.precrop), mode="bilinear", align_corners=False)
    r = plan.resolution
    offsets = torch.randint(0, plan.precrop - r + 1, (len(x), 2), generator=generator).tolist()
    return torch.stack([img[:, i:i + r, j:j + r] for img, (i, j) in zip(x, offsets, strict=True)])


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Grey images as three equal channels: every network here takes RGB, as timm's do."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**31


def train(
    model_spec: Model,
    settings: TrainSettings,
    out_dir: Path,
    *,
    resume: bool = False,
    observer: TrainObserver | None = None,
) -> TrainResult:
    """Train ``model_spec`` from scratch (or ``resume`` the checkpoint in ``out_dir``), then measure
    its latency. Returns the final validation accuracy (of the EMA weights when EMA is on)."""
    ckpt = out_dir / CHECKPOINT_NAME
    if ckpt.exists() and not resume:
        raise UsageError(f"{out_dir} already holds a checkpoint; pass --resume to continue it or pick another -o")
    if resume and not ckpt.exists():
        raise UsageError(f"--resume: no checkpoint in {out_dir} ({CHECKPOINT_NAME})")
    loaded = load_checkpoint(ckpt) if resume else None
    if loaded is not None:
        _check_same_run(ckpt, loaded[1], model_spec, settings)
    plan, data = make_plan(settings, settings.data, model_spec.total_stride)
    torch.manual_seed(settings.seed)
    model = model_spec.make(data.num_classes)
    optimizer = create_optimizer_v2(model, settings.opt, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = MultiStepLRScheduler(optimizer, decay_t=[round(plan.steps * f) for f in (0.3, 0.6, 0.9)],
                                     decay_rate=0.1, warmup_t=plan.warmup_steps, warmup_lr_init=0.0,
                                     warmup_prefix=False, t_in_epochs=False)
    if settings.init is not None and loaded is None:
        _load_init(model, Path(settings.init))
    ema = ModelEmaV3(model, decay=settings.ema_decay, use_warmup=True) if settings.ema_decay else None
    mixup = Mixup(mixup_alpha=plan.mixup, label_smoothing=0.0, num_classes=data.num_classes) if plan.mixup > 0 else None
    soft_loss = SoftTargetCrossEntropy()
    start_epoch, step, history = 0, 0, []
    if loaded is not None:
        tensors, state = loaded
        model.load_state_dict(prefixed(tensors, "model"))
        if ema is not None:
            ema.module.load_state_dict(prefixed(tensors, "ema"))
        unpack_optimizer(optimizer, tensors, state["optimizer"])
        start_epoch, step = state["epoch"], state["step"]
        history = [EpochRecord(**r) for r in state["history"]]
        if start_epoch >= plan.epochs:
            raise UsageError(f"{ckpt} has finished all {plan.epochs} epochs; nothing to resume")
        scheduler.step_update(step)
    if observer is not None:
        observer.started(plan, start_epoch)
    for epoch in range(start_epoch, plan.epochs):
        seed = _epoch_seed(settings.seed, epoch)
        torch.manual_seed(seed)  # dropout, drop-path
        np.random.seed(seed)  # timm's Mixup draws from numpy's global generator
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(data.x_train), generator=generator)
        model.train()
        losses = []
        for index in range(plan.steps_per_epoch):
            picked = order[index * plan.batch_size:(index + 1) * plan.batch_size]
            x = _random_crop(_rgb(data.x_train[picked]), plan, generator)
            y = data.y_train[picked]
            if mixup is not None:
                x, soft = mixup(x, y)
                loss = soft_loss(model(x), soft)
            else:
                loss = F.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"training diverged: loss is {loss.item()} at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            scheduler.step_update(step)
            if ema is not None:
                ema.update(model, step=step)
            losses.append(loss.item())
            if observer is not None:
                observer.step(epoch, index + 1)
        accuracy = evaluate(ema.module if ema is not None else model, _rgb(data.x_val), data.y_val)
        history.append(EpochRecord(epoch + 1, sum(losses) / len(losses), accuracy))
        _save(ckpt, model, ema, optimizer, model_spec, settings, plan, epoch + 1, step, history, data)
        if observer is not None:
            observer.epoch_done(history[-1])
    return _finish(model_spec, settings, plan, data, history, ckpt)


def _load_init(model: torch.nn.Module, path: Path) -> None:
    """Fine-tuning: every weight of the checkpoint whose name and shape fit (a new classifier when
    the class count differs)."""
    ckpt = path / CHECKPOINT_NAME if path.is_dir() else path
    tensors, _ = load_checkpoint(ckpt)
    weights = prefixed(tensors, "ema") or prefixed(tensors, "model")
    own = model.state_dict()
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if len(fitting) < len(own) // 2:
        raise UsageError(f"--init {path}: its weights do not fit this network ({len(fitting)} of {len(own)} tensors match)")
    model.load_state_dict(fitting, strict=False)


def _check_same_run(ckpt: Path, state: dict[str, Any], model_spec: Model, settings: TrainSettings) -> None:
    """A resume must train the same network with the same recipe, or it is another run."""
    if state.get("model") != model_spec.description:
        raise UsageError(f"{ckpt} trains another network ({state.get('name')!r}), not {model_spec.name!r}")
    stored = state.get("settings", {})
    for key, value in settings.recipe().items():
        if stored.get(key) != value:
            raise UsageError(f"{ckpt} was trained with {key}={stored.get(key)!r}, this run has {value!r}; "
                             "use the same settings to resume")


def _save(ckpt: Path, model: torch.nn.Module, ema: ModelEmaV3 | None, optimizer: torch.optim.Optimizer,
          model_spec: Model, settings: TrainSettings, plan: Plan, epoch: int, step: int,
          history: list[EpochRecord], data: ProxyData) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.module.state_dict().items()})
    optim_tensors, optim_state = pack_optimizer(optimizer)
    tensors.update(optim_tensors)
    state = {"name": model_spec.name, "model": model_spec.description, "settings": settings.recipe(),
             "plan": asdict(plan), "epoch": epoch, "step": step, "history": [asdict(r) for r in history],
             "optimizer": optim_state, "num_classes": data.num_classes, "dataset": data.name,
             **({"architecture": model_spec.description["architecture"], "norm": settings.norm}
                if "architecture" in model_spec.description else {})}
    save_checkpoint(ckpt, tensors, state)


def _finish(model_spec: Model, settings: TrainSettings, plan: Plan, data: ProxyData, history: list[EpochRecord],
            ckpt: Path) -> TrainResult:
    """Latency, params and MACs of the real network (1000 classes, RGB) at its own resolution."""
    from nas.baselines import count_module_macs

    real = model_spec.make(1000)
    latency = measure_latency(real, replace(settings.latency, resolution=model_spec.resolution))
    params = sum(p.numel() for p in real.parameters())
    macs = count_module_macs(model_spec.make, model_spec.resolution)
    return TrainResult(model_spec.name, history[-1].accuracy, plan, history, ckpt, latency, params, macs, data.name)


def architecture_model(arch: Architecture, norm: str = "bn") -> Model:
    """A nas architecture as something to train (timm EfficientNet/MobileNetV3 via build_model)."""
    return Model(arch.name, lambda num_classes: build_model(arch.genotype, num_classes=num_classes, norm=norm),
                 {"architecture": arch.to_dict(), "norm": norm}, arch.genotype.total_stride, arch.input_size())


def store_run(result: TrainResult, model_spec: Model, settings: TrainSettings, kind: str,
              storage_url: str | None = None) -> int:
    """One ``nas_runs`` row beside the study and trial the network came from (when it did)."""
    from storage import add_run, resolve_url

    provenance = model_spec.description.get("architecture", {}).get("provenance", {})
    return add_run(resolve_url(storage_url), kind=kind, name=result.name, study=provenance.get("study"),
                   trial=provenance.get("trial"), architecture=model_spec.description, dataset=result.dataset,
                   resolution=model_spec.resolution, accuracy=result.accuracy, latency_ms=result.latency.latency_ms,
                   latency_spread_ms=result.latency.spread_ms, params=result.params, macs=result.macs,
                   device=device_fingerprint(replace(settings.latency, resolution=model_spec.resolution)),
                   checkpoint=str(result.checkpoint.resolve()),
                   settings={**settings.recipe(), "plan": asdict(result.plan),
                             "history": [asdict(r) for r in result.history]})
