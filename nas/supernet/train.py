"""Training a supernet: the sandwich rule with in-place distillation, resumable after kill -9.

Each step trains the largest sub-network on the labels and the smallest and ``random_subnets``
random ones on the largest's predictions (BigNAS/OFA in-place distillation), summing their
gradients into one optimizer step. A checkpoint (``nas.checkpoint``: safetensors, atomic) is
written every ``save_every`` steps and at every epoch's end. The data order is drawn from
(seed, epoch) and each step's sub-networks from (seed, step), so a run resumed from any saved
step ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from timm.loss import SoftTargetCrossEntropy
from timm.scheduler import CosineLRScheduler

from nas.checkpoint import load_checkpoint, pack_optimizer, prefixed, read_state, save_checkpoint, unpack_optimizer
from nas.cpu_speed import adamw
from nas.data import ProxyData, load_proxy_data
from nas.errors import TrainingDiverged, UsageError
from nas.files import plain_name
from nas.supernet.sampling import largest, sandwich, smallest
from nas.supernet.weights import Supernet
from nas.turns import computing
from search_spaces import FactorizedSpace, Genotype, get_space

KIND = "supernet"
SUPERNET_DIR = Path("supernets")
CALIBRATION_BATCHES = 4  # of ``batch_size`` training images


def supernet_path(name: str) -> Path:
    """Where ``nas supernet train --name NAME`` keeps its checkpoint (beside ``nas.db``)."""
    return SUPERNET_DIR / f"{plain_name(name, 'supernet name')}.safetensors"


def named_supernet(spec: str) -> Path | None:
    """The checkpoint ``supernet[:NAME]`` names (``nas train --init``; without NAME the only one
    in ``supernets/``), or None when ``spec`` does not name a supernet."""
    kind, _, name = spec.partition(":")
    if kind != KIND:
        return None
    if name:
        return supernet_path(name)
    found = sorted(SUPERNET_DIR.glob("*.safetensors"))
    if len(found) != 1:
        raise UsageError(f"{spec!r}: {len(found)} supernets in {SUPERNET_DIR}/; name one with supernet:NAME"
                         + (f" ({', '.join(p.stem for p in found)})" if found else
                            " after training it with `nas supernet train`"))
    return found[0]


def is_supernet(path: Path) -> bool:
    """Whether ``path`` is a supernet checkpoint (not a `nas train` one)."""
    return read_state(path).get("kind") == KIND


@dataclass(frozen=True)
class SupernetSettings:
    space: str = "mbconv"
    data: str = "digits"
    resolution: int = 16  # the search's proxy resolution
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    random_subnets: int = 2  # per step, beside the largest and the smallest (the sandwich rule)
    seed: int = 0
    save_every: int = 50  # steps between checkpoints, besides each epoch's end; not part of the recipe
    threads: int = 1  # CPU threads; not part of the recipe (see ``train_supernet``)

    def __post_init__(self) -> None:
        try:
            get_space(self.space)
        except ValueError as err:
            raise UsageError(f"--space: {err}") from None
        if not 8 <= self.resolution <= 256:
            raise UsageError(f"--resolution must be between 8 and 256 pixels, got {self.resolution}")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise UsageError(f"--batch-size must be >= 2 (BatchNorm needs it), got {self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise UsageError("--lr must be > 0 and --weight-decay >= 0")
        if self.random_subnets < 0:
            raise UsageError(f"--random-subnets must be >= 0, got {self.random_subnets}")
        if self.save_every < 1:
            raise UsageError(f"--save-every must be >= 1 step, got {self.save_every}")
        if self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")

    def recipe(self) -> dict[str, Any]:
        """What decides the weights: a resume must match it."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("save_every", "threads")}


@dataclass(frozen=True)
class SupernetEpoch:
    epoch: int  # 1-based
    loss: float  # the largest network's cross-entropy on the labels, mean over the epoch's steps
    distill_loss: float  # the other sub-networks' soft cross-entropy to the largest's predictions, mean
    largest_accuracy: float  # validation accuracy after BatchNorm calibration
    smallest_accuracy: float


@dataclass(frozen=True)
class SupernetResult:
    path: Path
    history: list[SupernetEpoch]
    steps: int
    train_s: float  # training wall time over every run that made the checkpoint


class SupernetObserver(Protocol):
    """What a front end (the CLI's progress bar) hears from a supernet training."""

    def started(self, steps: int, steps_per_epoch: int, resumed_step: int) -> None: ...

    def step(self, step: int, loss: float) -> None: ...

    def epoch_done(self, record: SupernetEpoch) -> None: ...


def space_definition(space: FactorizedSpace) -> dict[str, Any]:
    """The space's choices as JSON: a supernet is refused when its space has changed since."""
    return json.loads(json.dumps(asdict(space)))


def calibration_batches(data: ProxyData, batch_size: int, seed: int = 0) -> list[torch.Tensor]:
    """The training images BatchNorm calibration uses: one draw per ``seed``, so every estimate of
    a network with the same seed sees the same images, and another seed measures what the draw
    moves (its noise)."""
    order = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(seed))
    picked = order[:CALIBRATION_BATCHES * batch_size]
    return [data.x_train[picked[i:i + batch_size]] for i in range(0, len(picked), batch_size)]


def subnet_accuracy(supernet: Supernet, genotype: Genotype, data: ProxyData, calibration: list[torch.Tensor]) -> float:
    """Validation accuracy with inherited weights after BatchNorm calibration."""
    return supernet.accuracy(genotype, supernet.calibrate(genotype, calibration), data.x_val, data.y_val)


def _seed(seed: int, counter: int) -> int:
    return (seed * 1_000_003 + counter) % 2**31


def _check_run(path: Path, state: dict[str, Any], settings: SupernetSettings, space: FactorizedSpace,
               data: ProxyData) -> None:
    """A resume must train the same space on the same data with the same recipe."""
    check_supernet_state(path, state, space)
    if state["dataset"] != data.name:
        raise UsageError(f"{path} is a supernet trained on {state['dataset']!r}, not {data.name!r}")
    for key, value in settings.recipe().items():
        if state["settings"].get(key) != value:
            raise UsageError(f"{path} was trained with {key}={state['settings'].get(key)!r}, this run has {value!r}; "
                             "use the same settings to resume")


def _check_kind(path: Path, state: dict[str, Any]) -> None:
    if state.get("kind") != KIND:
        raise UsageError(f"{path} is not a supernet checkpoint (train one with `nas supernet train`)")


def check_supernet_state(path: Path, state: dict[str, Any], space: FactorizedSpace) -> None:
    """Refuse, in one line, a checkpoint that is not a supernet of ``space`` as defined today."""
    _check_kind(path, state)
    if state["space"] != space.name:
        raise UsageError(f"{path} is a supernet of space {state['space']!r}, not {space.name!r}")
    if state["space_definition"] != space_definition(space):
        raise UsageError(f"{path} was trained for an earlier definition of space {space.name!r}; train it again")


def train_supernet(settings: SupernetSettings, path: Path, *, resume: bool = False,
                   observer: SupernetObserver | None = None) -> SupernetResult:
    """Train the supernet of ``settings.space`` into ``path`` (or ``resume`` the one there).

    Runs on ``settings.threads`` threads, one by default: on a shared 2-core machine two threads
    wait on each other whenever anything else runs (measured here: a tiny supernet's BatchNorm
    took 28 ms a call with two threads under load, 20-60 us alone)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(settings, path, resume, observer)
    finally:
        torch.set_num_threads(previous)


def _train(settings: SupernetSettings, path: Path, resume: bool, observer: SupernetObserver | None) -> SupernetResult:
    if path.exists() and not resume:
        raise UsageError(f"{path} already exists; pass --resume to continue it or pick another --name")
    if resume and not path.exists():
        raise UsageError(f"--resume: no supernet checkpoint at {path}")
    space = get_space(settings.space)
    data = load_proxy_data(settings.data, settings.resolution)
    loaded = load_checkpoint(path) if resume else None
    if loaded is not None:
        _check_run(path, loaded[1], settings, space, data)
    torch.manual_seed(settings.seed)
    supernet = Supernet(space, num_classes=data.num_classes, in_chans=data.in_chans, resolution=settings.resolution)
    zero_classifier(supernet)
    params = list(supernet.params.values())
    optimizer = adamw(
        [{"params": [p for p in params if p.ndim > 1]},  # no decay on BatchNorm and biases, as timm
         {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}],
        settings.lr, settings.weight_decay)
    batch = min(settings.batch_size, len(data.x_train))
    steps_per_epoch = len(data.x_train) // batch
    total = settings.epochs * steps_per_epoch
    scheduler = CosineLRScheduler(optimizer, t_initial=total, warmup_t=min(20, total // 10),
                                  warmup_lr_init=settings.lr / 10, t_in_epochs=False)
    step, history, sums, train_s = 0, [], [0.0, 0.0], 0.0
    if loaded is not None:
        tensors, state = loaded
        supernet.load(prefixed(tensors, "supernet"))
        unpack_optimizer(optimizer, tensors, state["optimizer"])
        step, sums, train_s = state["step"], state["epoch_sums"], state["train_s"]
        history = [SupernetEpoch(**r) for r in state["history"]]
        if step >= total:
            raise UsageError(f"{path} has finished all {settings.epochs} epochs; nothing to resume")
        scheduler.step_update(step)
    if observer is not None:
        observer.started(total, steps_per_epoch, step)
    calibration = calibration_batches(data, batch)
    soft_loss = SoftTargetCrossEntropy()

    def save() -> None:
        tensors = {f"supernet.{k}": v for k, v in supernet.tensors().items()}
        optim_tensors, optim_state = pack_optimizer(optimizer)
        state = {"kind": KIND, "space": space.name, "space_definition": space_definition(space),
                 "dataset": data.name, "num_classes": data.num_classes, "in_chans": data.in_chans,
                 "resolution": settings.resolution, "settings": settings.recipe(), "epoch": step // steps_per_epoch,
                 "step": step, "steps": total, "epoch_sums": sums, "train_s": train_s + time.perf_counter() - start,
                 "history": [asdict(r) for r in history], "optimizer": optim_state}
        save_checkpoint(path, {**tensors, **optim_tensors}, state)

    start = time.perf_counter()
    for epoch in range(step // steps_per_epoch, settings.epochs):
        order = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(_seed(settings.seed, epoch)))
        for index in range(step - epoch * steps_per_epoch, steps_per_epoch):
            picked = order[index * batch:(index + 1) * batch]
            x, y = data.x_train[picked], data.y_train[picked]
            teacher, *students = sandwich(space, random.Random(_seed(settings.seed, step)), settings.random_subnets)
            with computing():
                optimizer.zero_grad(set_to_none=True)
                logits = supernet.forward(teacher, x, train=True)
                loss = F.cross_entropy(logits, y)
                _check_finite(loss, epoch, step)
                loss.backward()
                target = logits.detach().softmax(1)
                distill = 0.0
                for genotype in students:
                    student_loss = soft_loss(supernet.forward(genotype, x, train=True), target)
                    _check_finite(student_loss, epoch, step)
                    student_loss.backward()
                    distill += student_loss.item() / len(students)
                optimizer.step()
            step += 1
            scheduler.step_update(step)
            sums = [sums[0] + loss.item(), sums[1] + distill]
            if observer is not None:
                observer.step(step, loss.item())
            if step % settings.save_every == 0 and index + 1 < steps_per_epoch:
                save()
        history.append(SupernetEpoch(
            epoch + 1, sums[0] / steps_per_epoch, sums[1] / steps_per_epoch,
            subnet_accuracy(supernet, largest(space), data, calibration),
            subnet_accuracy(supernet, smallest(space), data, calibration)))
        sums = [0.0, 0.0]
        save()
        if observer is not None:
            observer.epoch_done(history[-1])
    return SupernetResult(path, history, step, read_state(path)["train_s"])


def zero_classifier(supernet: Supernet) -> None:
    """Start the last layer at zero, every class at the same logit. timm initialises it for 1,000
    classes (uniform in +-1/sqrt(classes)); with 10 the first logits spread by ~3.6 and the first
    loss is ~5.5 instead of ln 10 = 2.3. Measured on ``mbconv``, MNIST at 16 px, 5 epochs of the
    sandwich: largest 55.4 -> 79.6%, smallest 53.5 -> 67.5% validation accuracy (after 20 epochs:
    88.1 -> 95.8% and 84.8 -> 93.3%)."""
    with torch.no_grad():
        for name in supernet.classifier:
            supernet.params[name].zero_()


def _check_finite(loss: torch.Tensor, epoch: int, step: int) -> None:
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"supernet training diverged: loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}")


def open_supernet(path: Path, space: str | None = None) -> tuple[Supernet, dict[str, Any]]:
    """A finished supernet checkpoint, refused in one line when it is of another space than
    ``space`` (when given), of an earlier definition of its space, or not finished."""
    state = read_state(path)
    _check_kind(path, state)
    try:
        own = get_space(space or state["space"])
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    check_supernet_state(path, state, own)
    if state["step"] < state["steps"]:
        raise UsageError(f"{path} is still training (step {state['step']} of {state['steps']}); "
                         f"finish it with `nas supernet train --resume`")
    supernet = Supernet(own, num_classes=state["num_classes"], in_chans=state["in_chans"],
                        resolution=state["resolution"])
    tensors, _ = load_checkpoint(path)
    supernet.load(prefixed(tensors, "supernet"))
    return supernet, state
