"""Re-training a network outside the search, with timm's optimizer, scheduler, MixUp and EMA.

The recipe and BiT-HyperRule live in ``nas.recipe``; measuring and storing a trained network in
``nas.runs``. Each optimizer step sums the gradients of micro-batches (``accumulate_gradient``),
so BiT's batch of 512 fits in memory. Every epoch ends in an atomic checkpoint. All randomness of
an epoch (data order, crops, MixUp, dropout) is drawn from generators seeded by (seed, epoch), so
``resume`` from a checkpoint ends with the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from timm.scheduler.scheduler import Scheduler
from timm.utils import ModelEmaV3

from nas.architecture import Architecture
from nas.checkpoint import CHECKPOINT_NAME, load_checkpoint, pack_optimizer, prefixed, save_checkpoint, unpack_optimizer
from nas.cpu_speed import channels_last, pad_small_maps
from nas.data import ProxyData
from nas.errors import TrainingDiverged, UsageError
from nas.latency import LatencySettings, Measurement, measure_network
from nas.proxy import evaluate
from nas.recipe import Plan, TrainSettings, make_plan
from nas.turns import computing
from search_spaces import Genotype, build_model

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Model:
    """What ``train`` trains: a name, a seeded factory, and how latency and MACs see it."""

    name: str
    make: Callable[[int], torch.nn.Module]  # num_classes -> a fresh module (3 input channels)
    description: dict[str, Any]  # JSON that says what the network is (stored in the checkpoint)
    measure: Callable[[LatencySettings], Measurement]  # its latency, timed in a process that never trains
    total_stride: int = 32
    resolution: int = 224  # the input size its latency is measured at
    genotype: Genotype | None = None  # a nas architecture's (a supernet can initialise it); None: a timm model


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    loss: float
    accuracy: float


@dataclass(frozen=True)
class TrainResult:
    name: str
    accuracy: float  # validation accuracy after the last epoch (the EMA's when EMA is on)
    plan: Plan
    history: tuple[EpochRecord, ...]
    checkpoint: Path
    dataset: str


class TrainObserver(Protocol):
    """What a front end (the CLI's progress bar) hears from a training run."""

    def started(self, plan: Plan, resumed_epoch: int) -> None: ...

    def step(self, epoch: int, step_in_epoch: int) -> None: ...

    def epoch_done(self, record: EpochRecord) -> None: ...


def architecture_model(arch: Architecture, norm: str = "bn") -> Model:
    """A nas architecture as something to train (timm EfficientNet/MobileNetV3 via build_model)."""
    return Model(arch.name, lambda num_classes: build_model(arch.genotype, num_classes=num_classes, norm=norm),
                 {"architecture": arch.to_dict(), "norm": norm}, partial(measure_network, arch.genotype, norm=norm),
                 arch.genotype.total_stride, arch.input_size(), arch.genotype)


def accumulate_gradient(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, micro_batch: int,
                        loss_fn: LossFn) -> float:
    """Add the gradient of the batch's mean loss to ``model``'s ``.grad``, one micro-batch of
    ``micro_batch`` images at a time (each loss weighted by its share of the batch), and return
    that loss. The same gradient as one pass over the whole batch when no layer mixes images
    (GroupNorm; BatchNorm normalises each micro-batch on its own), in a micro-batch's memory."""
    total = 0.0
    for xs, ts in zip(x.split(micro_batch), target.split(micro_batch), strict=True):
        loss = loss_fn(model(xs), ts) * (len(xs) / len(x))
        loss.backward()
        total += loss.item()
    return total


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


def make_scheduler(optimizer: torch.optim.Optimizer, plan: Plan) -> Scheduler:
    """The plan's schedule, stepped once per optimizer step, both from 0 through a linear warm-up."""
    if plan.sched == "step":  # BiT-HyperRule
        return MultiStepLRScheduler(optimizer, decay_t=[round(plan.steps * f) for f in (0.3, 0.6, 0.9)],
                                    decay_rate=0.1, warmup_t=plan.warmup_steps, warmup_lr_init=0.0,
                                    warmup_prefix=False, t_in_epochs=False)
    return CosineLRScheduler(optimizer, t_initial=plan.steps, warmup_t=plan.warmup_steps, warmup_lr_init=0.0,
                             warmup_prefix=False, t_in_epochs=False)


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
    """Train ``model_spec`` from scratch (or ``resume`` the checkpoint in ``out_dir``)."""
    ckpt = out_dir / CHECKPOINT_NAME
    if ckpt.exists() and not resume:
        raise UsageError(f"{out_dir} already holds a checkpoint; pass --resume to continue it or pick another -o")
    if resume and not ckpt.exists():
        raise UsageError(f"--resume: no checkpoint in {out_dir} ({CHECKPOINT_NAME})")
    loaded = load_checkpoint(ckpt) if resume else None
    if loaded is not None:
        _check_same_run(ckpt, loaded[1], model_spec, settings)
    plan, data = make_plan(settings, model_spec.total_stride)
    torch.manual_seed(settings.seed)
    model = channels_last(model_spec.make(data.num_classes))  # a step 1.64x faster, median (bench/layout.py)
    pad_small_maps(model, torch.zeros(1, 3, plan.resolution, plan.resolution))
    optimizer = create_optimizer_v2(model, settings.opt, lr=plan.lr, weight_decay=settings.weight_decay)
    scheduler = make_scheduler(optimizer, plan)
    if settings.init is not None and loaded is None:
        _load_init(model, settings.init, model_spec)
    ema = ModelEmaV3(model, decay=settings.ema_decay, use_warmup=True) if settings.ema_decay else None
    mixup = Mixup(mixup_alpha=plan.mixup, label_smoothing=0.0, num_classes=data.num_classes) if plan.mixup > 0 else None
    loss_fn: LossFn = SoftTargetCrossEntropy() if mixup is not None else F.cross_entropy
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
            target = data.y_train[picked]
            if mixup is not None:
                x, target = mixup(x, target)  # pairs images across the whole batch, before it is split
            with computing():
                optimizer.zero_grad(set_to_none=True)
                loss = accumulate_gradient(model, x, target, plan.micro_batch, loss_fn)
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"training diverged: loss is {loss} at epoch {epoch + 1}")
                optimizer.step()
                if ema is not None:
                    ema.update(model, step=step + 1)
            step += 1
            scheduler.step_update(step)
            losses.append(loss)
            if observer is not None:
                observer.step(epoch, index + 1)
        accuracy = evaluate(ema.module if ema is not None else model, _rgb(data.x_val), data.y_val)
        history.append(EpochRecord(epoch + 1, sum(losses) / len(losses), accuracy))
        _save(ckpt, model, ema, optimizer, model_spec, settings, plan, epoch + 1, step, history, data)
        if observer is not None:
            observer.epoch_done(history[-1])
    return TrainResult(model_spec.name, history[-1].accuracy, plan, tuple(history), ckpt, data.name)


def initial_weights(init: str, model_spec: Model) -> dict[str, torch.Tensor]:
    """What ``--init`` starts from: a `nas train` checkpoint's weights (its EMA's when it has one),
    or, from a supernet (``supernet[:NAME]`` or its file), this network's inherited slices with
    calibrated BatchNorm statistics, as Once-for-All fine-tunes its sub-networks."""
    from nas.supernet import is_supernet, named_supernet

    path = named_supernet(init) or Path(init)
    ckpt = path / CHECKPOINT_NAME if path.is_dir() else path
    if not is_supernet(ckpt):
        tensors, _ = load_checkpoint(ckpt)
        return prefixed(tensors, "ema") or prefixed(tensors, "model")
    from nas.estimators.supernet import SupernetEstimator

    if model_spec.genotype is None or model_spec.description.get("norm") != "bn":
        raise UsageError(f"--init {init}: a supernet initialises only its own space's networks with --norm bn, "
                         f"not {model_spec.name}")
    estimator = SupernetEstimator(ckpt)
    if not estimator.holds(model_spec.genotype):
        raise UsageError(f"--init {init}: {model_spec.name} is not a network of the {estimator.state['space']!r} "
                         "space this supernet holds")
    return estimator.inherited_weights(model_spec.genotype, in_chans=3)


def _load_init(model: torch.nn.Module, init: str, model_spec: Model) -> None:
    """Fine-tuning: every weight ``--init`` names whose name and shape fit (a new classifier when
    the class count differs)."""
    weights = initial_weights(init, model_spec)
    own = model.state_dict()
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if len(fitting) < len(own) // 2:
        raise UsageError(f"--init {init}: its weights do not fit this network ({len(fitting)} of {len(own)} tensors match)")
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
