"""What a training run is: its settings, BiT-HyperRule for the ``auto`` ones, and the plan they
resolve to on a dataset.

BiT-HyperRule (Kolesnikov et al. 2019) takes the schedule length and MixUp from the number of
training images and the resolution from the image size: 500 / 10k / 20k steps of 512 images for
< 20k / < 500k / more images; linear warm-up (100 of 500 steps, else 500), then the learning rate
divided by 10 at 30, 60 and 90% of the steps; images under 96x96 train at 128 (random crops of
160), larger ones at 384 (crops of 448); MixUp alpha 0.1 from 20k images on. nas keeps the step
count at any ``batch_size`` (64 by default, a CPU budget; 512 is BiT's own, reached by gradient
accumulation over micro-batches). BiT's step schedule is for fine-tuning; from scratch ``auto``
trains on a cosine at a higher rate (README, "Schedule and learning rate").
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from timm.optim import list_optimizers

from nas.data import IMAGE_SUFFIXES, ProxyData, load_proxy_data
from nas.errors import DataError, UsageError
from nas.latency.settings import LatencySettings

BUILTIN_IMAGE_SIZE = {"digits": 8, "mnist": 28}
NORMS = ("bn", "gn-ws")
SCHEDULES = ("auto", "cosine", "step")
# from scratch, BiT's fine-tuning schedule (lr / 10 at 30% of the steps) leaves MobileNets under-trained:
# mobilenetv2_100 on digits at 32 px, 500 steps: 47% with it at 3e-3, 87% with a cosine at 1e-2 (README)
SCRATCH_LR, FINE_TUNE_LR = 1e-2, 3e-3
COSINE_WARMUP = 0.05  # of the steps


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
    batch_size: int = 64  # images per optimizer step
    micro_batch: int = 64  # images per forward/backward pass; gradients add up to batch_size
    opt: str = "adamw"  # any timm optimizer; BiT fine-tunes with "momentum" at lr 0.003
    lr: float | None = None  # None: SCRATCH_LR from scratch, FINE_TUNE_LR with ``init``
    sched: str = "auto"  # auto: cosine from scratch, BiT's steps when fine-tuning from ``init``
    weight_decay: float = 0.05
    ema_decay: float | None = 0.998  # timm ModelEmaV3 with warm-up; None: no EMA
    seed: int = 0
    init: str | None = None  # fine-tune from a nas checkpoint's weights or supernet[:NAME]'s (a new head if classes differ)
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
        if self.micro_batch < 1:
            raise UsageError(f"--micro-batch must be >= 1, got {self.micro_batch}")
        if self.opt not in list_optimizers():
            raise UsageError(f"--opt: unknown {self.opt!r}; timm knows e.g. adamw, sgd, momentum, lamb, rmsproptf")
        if self.sched not in SCHEDULES:
            raise UsageError(f"--sched: unknown {self.sched!r}; choose one of {', '.join(SCHEDULES)}")
        if (self.lr is not None and not self.lr > 0) or self.weight_decay < 0:
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
    micro_batch: int
    steps_per_epoch: int
    warmup_steps: int
    resolution: int
    precrop: int
    mixup: float
    train_images: int
    image_size: int
    sched: str  # cosine | step
    lr: float

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def accumulation(self) -> int:
        """Forward/backward passes per optimizer step."""
        return math.ceil(self.batch_size / self.micro_batch)


def check_input_size(resolution: int, total_stride: int, flag: str = "--resolution") -> None:
    """A network strides by ``total_stride``; other input sizes would crop or pad its last map."""
    if resolution < total_stride or resolution % total_stride:
        below, above = max(total_stride, resolution // total_stride * total_stride), (resolution // total_stride + 1) * total_stride
        raise UsageError(f"{flag} {resolution} is not divisible by the network's total stride {total_stride}; "
                         f"use {below} or {above}")


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


def make_plan(settings: TrainSettings, total_stride: int) -> tuple[Plan, ProxyData]:
    """Resolve ``auto`` settings against the data; loads the data at the training resolution."""
    size = image_size(settings.data)
    resolution = settings.resolution or bit_hyperrule(10**9, size).resolution  # resolution only depends on the image size
    check_input_size(resolution, total_stride)
    data = load_proxy_data(settings.data, resolution)
    rule = bit_hyperrule(len(data.x_train), size)
    batch = min(settings.batch_size, len(data.x_train) // 2 * 2)
    steps_per_epoch = len(data.x_train) // batch
    epochs = settings.epochs or math.ceil(rule.steps / steps_per_epoch)
    steps = epochs * steps_per_epoch
    fine_tune = settings.init is not None
    sched = settings.sched if settings.sched != "auto" else "step" if fine_tune else "cosine"
    warmup_share = rule.warmup_steps / rule.steps if sched == "step" else COSINE_WARMUP
    warmup = min(round(steps * warmup_share), steps - 1)
    precrop = round(resolution * rule.precrop / rule.resolution)
    mixup = rule.mixup if settings.mixup is None else settings.mixup
    lr = settings.lr or (FINE_TUNE_LR if fine_tune else SCRATCH_LR)
    return Plan(epochs, batch, min(settings.micro_batch, batch), steps_per_epoch, warmup, resolution, precrop, mixup,
                len(data.x_train), size, sched, lr), data
