"""Short proxy training that ranks architectures (MnasNet trains 5 epochs on held-out ImageNet).

On 16-32 px images a network with total stride 32 ends on a 1x1 map and ranks poorly, so the
proxy keeps every searched block but moves the earliest stride-2 blocks to stride 1 until the
last feature map is at least 2x2, as CIFAR variants of ImageNet networks do.

Networks train as ``nas.cpu_speed`` makes a step fast on a CPU (channels-last, fused AdamW,
explicit padding on the smallest maps).

A one-epoch training is scored by progressive validation (Blum, Kalai and Langford 1999): each
batch of the epoch's second half is scored as it arrives, before the step that learns from it, so
every scored image is one the network has not seen. Against the estimators' reference this ranks
networks better than accuracy on the validation split after training (Kendall tau 0.80 against
0.71, mean of four seeds; ``bench/estimator_seeds.py``): it scores twice as many images, and in
the BatchNorm mode the network trained in, where running statistics that trail 45 steps of fast
change can sink a network's validation accuracy near chance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.scheduler import CosineLRScheduler

from nas.cpu_speed import adamw, channels_last, pad_small_maps
from nas.data import ProxyData
from nas.errors import TrainingDiverged, UsageError
from nas.turns import computing
from search_spaces import Genotype, build_model

StepHook = Callable[[int, int], None]  # (steps done, steps in all)

PROGRESSIVE = "progressive"  # the second half of a one-epoch training, each batch scored before its step
VALIDATION = "validation"  # the validation split after each epoch
SCORES = (PROGRESSIVE, VALIDATION)


@dataclass(frozen=True)
class ProxySettings:
    epochs: int = 1  # `bench/estimators.py`, `bench/estimator_seeds.py`: Kendall tau 0.80, progressive, in ~4 s
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.05
    resolution: int = 16
    seed: int = 0
    score: str | None = None  # PROGRESSIVE or VALIDATION; None: progressive for one epoch, else validation

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {self.epochs}")
        if self.score is None:
            object.__setattr__(self, "score", PROGRESSIVE if self.epochs == 1 else VALIDATION)
        if self.score not in SCORES:
            raise UsageError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.score == PROGRESSIVE and self.epochs > 1:
            raise UsageError(f"score={PROGRESSIVE} needs a one-epoch training (after the first epoch every "
                             f"image has been seen); with {self.epochs} epochs use score={VALIDATION}")
        if self.batch_size < 2:
            raise UsageError(f"--batch-size must be >= 2 (BatchNorm needs it), got {self.batch_size}")
        if not 8 <= self.resolution <= 256:
            raise UsageError(f"--proxy-resolution must be between 8 and 256 pixels, got {self.resolution}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")


def proxy_genotype(genotype: Genotype, resolution: int) -> Genotype:
    """The genotype with a total stride that leaves the last feature map at least 2x2."""
    max_stride = 2 ** max(1, int(math.log2(resolution // 2)))
    return genotype.with_max_stride(max_stride)


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            with computing():
                correct += (model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum().item()
    return correct / len(x)


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, where: str) -> int:
    """One optimizer step, as a piece of work a measurement waits for (``nas.turns``); returns how
    many of ``x`` the network classified right before the step. A non-finite loss raises
    ``TrainingDiverged`` saying ``where``."""
    with computing():
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"training diverged: loss is {loss.item()} at {where}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return int((logits.detach().argmax(1) == y).sum())


def train_proxy(
    genotype: Genotype,
    data: ProxyData,
    settings: ProxySettings,
    on_epoch: Callable[[int, float], None] | None = None,
) -> float:
    """Train from scratch and return the network's accuracy as ``settings.score`` says;
    ``on_epoch(epoch, acc)`` hears each epoch's and may prune.

    Raises ``TrainingDiverged`` on a non-finite loss, so the trial is stored as FAIL with why.
    """
    torch.manual_seed(settings.seed)
    model = channels_last(build_model(proxy_genotype(genotype, settings.resolution),
                                      num_classes=data.num_classes, in_chans=data.in_chans))
    pad_small_maps(model, data.x_train)
    optimizer = adamw(model, settings.lr, settings.weight_decay)
    steps_per_epoch = math.ceil(len(data.x_train) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    scheduler = CosineLRScheduler(optimizer, t_initial=total, warmup_t=min(20, total // 10),
                                  warmup_lr_init=settings.lr / 10, t_in_epochs=False)
    generator = torch.Generator().manual_seed(settings.seed)
    accuracy = 0.0
    step = 0
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(data.x_train), generator=generator)
        batches = [index for index in order.split(settings.batch_size)
                   if len(index) >= 2]  # BatchNorm cannot train on a single image
        scored = correct = 0
        for number, index in enumerate(batches):
            right = _step(model, optimizer, data.x_train[index], data.y_train[index], f"epoch {epoch + 1}, step {step + 1}")
            if number >= len(batches) // 2:
                scored += len(index)
                correct += right
            step += 1
            scheduler.step_update(step)
        accuracy = correct / scored if settings.score == PROGRESSIVE else evaluate(model, data.x_val, data.y_val)
        if on_epoch is not None:
            on_epoch(epoch, accuracy)
    return accuracy


@dataclass(frozen=True)
class TuneSettings:
    """How one network is trained: ``steps`` of AdamW at peak ``lr``, cosine-decayed."""

    steps: int
    lr: float
    weight_decay: float = 0.05
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise UsageError(f"steps must be >= 0, got {self.steps}")
        if self.batch_size < 2:
            raise UsageError(f"batch_size must be >= 2 (BatchNorm needs it), got {self.batch_size}")
        if not self.lr > 0:
            raise UsageError(f"lr must be > 0, got {self.lr}")


def train_steps(model: torch.nn.Module, data: ProxyData, settings: TuneSettings, on_step: StepHook | None = None) -> float:
    """Train ``model`` in place for ``settings.steps`` full batches and return its validation
    accuracy; a non-finite loss raises ``TrainingDiverged``."""
    if settings.batch_size > len(data.x_train):
        raise UsageError(f"batch_size {settings.batch_size} is more than {data.name}'s {len(data.x_train)} training images")
    torch.manual_seed(settings.seed)
    channels_last(model)
    pad_small_maps(model, data.x_train)
    if settings.steps:
        optimizer = adamw(model, settings.lr, settings.weight_decay)
        scheduler = CosineLRScheduler(optimizer, t_initial=settings.steps, warmup_t=min(20, settings.steps // 10),
                                      warmup_lr_init=settings.lr / 10, t_in_epochs=False)
        generator = torch.Generator().manual_seed(settings.seed)
        batches_per_epoch = len(data.x_train) // settings.batch_size
        model.train()
        for step in range(settings.steps):
            if step % batches_per_epoch == 0:
                order = torch.randperm(len(data.x_train), generator=generator)
            start = step % batches_per_epoch * settings.batch_size
            index = order[start:start + settings.batch_size]
            _step(model, optimizer, data.x_train[index], data.y_train[index], f"step {step + 1}")
            scheduler.step_update(step + 1)
            if on_step is not None:
                on_step(step + 1, settings.steps)
    return evaluate(model, data.x_val, data.y_val)
