"""`nas export`, `nas train` and `nas baselines`: getting found networks out, and training them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nas.cli.common import JsonOpt, StorageOpt, StudyOpt, app, err, out, print_json
from nas.errors import UsageError

if TYPE_CHECKING:
    from nas.recipe import Plan, TrainSettings
    from nas.train import EpochRecord

RefArg = Annotated[str, typer.Argument(help="a trial number, a paper network name, an architecture JSON file "
                                            "(or, for export, a `nas train` folder or checkpoint)")]


def _auto(value: str, flag: str, kind: type = int) -> Any:
    """``auto`` -> None (the recipe decides from the data and ``--init``), else the number."""
    if value == "auto":
        return None
    try:
        return kind(value)
    except ValueError:
        raise UsageError(f"{flag} must be 'auto' or a number, got {value!r}") from None


class _EpochBar:
    """A progress bar over each epoch's steps; one line per finished epoch with loss and accuracy."""

    def __init__(self, console: Console, label: str) -> None:
        self.label = label
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self.task = None
        self.epochs = 0

    def started(self, plan: Plan, resumed_epoch: int) -> None:
        self.epochs = plan.epochs
        if plan.accumulation > 1:
            self.progress.console.print(f"{self.label}: each step of {plan.batch_size} images accumulates "
                                        f"{plan.accumulation} micro-batches of {plan.micro_batch}")
        if resumed_epoch:
            self.progress.console.print(f"{self.label}: resuming after epoch {resumed_epoch} of {plan.epochs}")
        self.task = self.progress.add_task("", total=plan.steps_per_epoch)
        self.progress.start()

    def step(self, epoch: int, step_in_epoch: int) -> None:
        self.progress.update(self.task, completed=step_in_epoch,
                             description=f"{self.label} epoch {epoch + 1}/{self.epochs}")

    def epoch_done(self, record: EpochRecord) -> None:
        self.progress.console.print(f"{self.label} epoch {record.epoch}/{self.epochs}: loss {record.loss:.4f}  "
                                    f"val acc {100 * record.accuracy:.1f}%")

    def stop(self) -> None:
        self.progress.stop()


def _settings(data: str, epochs: str, resolution: str, mixup: str, norm: str, batch_size: int, micro_batch: int,
              opt: str, lr: str, sched: str, weight_decay: float, ema_decay: float, seed: int, init: Optional[str],
              threads: int) -> TrainSettings:
    from nas.latency import LatencySettings
    from nas.recipe import TrainSettings

    return TrainSettings(data=data, epochs=_auto(epochs, "--epochs"), resolution=_auto(resolution, "--resolution"),
                         mixup=_auto(mixup, "--mixup", float), norm=norm, batch_size=batch_size, micro_batch=micro_batch,
                         opt=opt, lr=_auto(lr, "--lr", float), sched=sched, weight_decay=weight_decay,
                         ema_decay=ema_decay or None, seed=seed, init=init, latency=LatencySettings(threads=threads))


LrOpt = Annotated[str, typer.Option(help="peak learning rate, or auto: 1e-2 from scratch, 3e-3 fine-tuning (--init)")]
SchedOpt = Annotated[str, typer.Option(help="auto (cosine from scratch, BiT's steps with --init) | cosine | step "
                                            "(BiT: warm-up, then lr / 10 at 30, 60 and 90% of the steps)")]
BatchOpt = Annotated[int, typer.Option(help="images per optimizer step (even); BiT-HyperRule is defined at 512")]
MicroBatchOpt = Annotated[int, typer.Option(help="images per forward/backward pass; their gradients add up to one "
                                                 "step of --batch-size")]


@app.command()
def export(
    ref: RefArg,
    fmt: Annotated[str, typer.Option("--format", help="json | timm | onnx | torchscript")] = "json",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="file (folder for timm) [default: nas_NAME.EXT here]")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="input size of the exported graph [default: the architecture's, else 224]")] = None,
    num_classes: Annotated[int, typer.Option(help="classes of an untrained export (a checkpoint keeps its own)")] = 1000,
    threads: Annotated[int, typer.Option(help="CPU threads the model is timed with, and deployed with (DEPLOY.md)")] = 1,
    allocator: Annotated[str, typer.Option(help="kept | default: the allocator it is timed with (DEPLOY.md)")] = "kept",
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an architecture (with trained weights when REF is a `nas train` checkpoint) as FORMAT;
    a model is timed with its runtime and DEPLOY.md beside it says how to reproduce that latency."""
    from nas.export import FORMATS, export as run_export, load_network
    from storage import Store

    store = Store.open(storage)
    if fmt not in FORMATS:
        raise UsageError(f"--format: unknown {fmt!r}; choose one of {', '.join(FORMATS)}")
    if num_classes < 1:
        raise UsageError(f"--num-classes must be >= 1, got {num_classes}")
    network = load_network(ref, store, study, num_classes=num_classes)
    result = run_export(network, fmt, output, resolution, threads=threads, allocator=allocator)
    if as_json:
        print_json({"name": network.arch.name, **asdict(result)})
        return
    check = "" if result.max_abs_diff is None else f"; read back: max |diff| {result.max_abs_diff:.1e} vs torch"
    weights = "trained" if result.trained else "untrained (seeded init)"
    out.print(f"wrote {result.path} ({fmt}, {weights}, {result.resolution}x{result.resolution}, "
              f"{result.num_classes} classes{check})")
    if result.deploy_notes is not None:
        out.print(f"nas measured {result.latency_ms:.2f} ms with its runtime; how to deploy at that latency: "
                  f"{result.deploy_notes} (check it: `nas latency check {result.path}`)")


@app.command()
def train(
    ref: RefArg,
    data: Annotated[str, typer.Option(help="digits | mnist | a folder of class sub-folders")] = "digits",
    epochs: Annotated[str, typer.Option(help="auto (BiT-HyperRule: 500/10k/20k steps by dataset size) or N")] = "auto",
    resolution: Annotated[str, typer.Option(help="auto (BiT-HyperRule: 128 under 96x96 images, else 384) or N")] = "auto",
    mixup: Annotated[str, typer.Option(help="auto (BiT-HyperRule: 0.1 from 20k images, else off) or alpha")] = "auto",
    norm: Annotated[str, typer.Option(help="bn | gn-ws (GroupNorm + Weight Standardization, BiT)")] = "bn",
    batch_size: BatchOpt = 64,
    micro_batch: MicroBatchOpt = 64,
    opt: Annotated[str, typer.Option(help="timm optimizer: adamw, sgd, momentum, lamb, ...")] = "adamw",
    lr: LrOpt = "auto",
    sched: SchedOpt = "auto",
    weight_decay: Annotated[float, typer.Option(help="weight decay")] = 0.05,
    ema_decay: Annotated[float, typer.Option(help="EMA of weights (timm ModelEmaV3, warm-up); 0 turns it off")] = 0.998,
    seed: Annotated[int, typer.Option(help="seed of init, data order, crops and MixUp")] = 0,
    init: Annotated[Optional[str], typer.Option(help="fine-tune: start from this `nas train` checkpoint or folder, or "
                                                     "supernet[:NAME]: the network's inherited supernet weights")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the checkpoint in -o from its last epoch")] = False,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="folder for the checkpoint [default: runs/nas_NAME]")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for latency")] = 1,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train an architecture from scratch (or fine-tune it) and store accuracy, latency and checkpoint."""
    from nas.architecture import write_architecture
    from nas.export import usable_architecture
    from nas.runs import store_run
    from nas.timm_models import timm_name
    from nas.train import architecture_model, train as run_train
    from storage import Store

    store = Store.open(storage)
    settings = _settings(data, epochs, resolution, mixup, norm, batch_size, micro_batch, opt, lr, sched,
                         weight_decay, ema_decay, seed, init, threads)
    arch = usable_architecture(ref, store, study)
    spec = architecture_model(arch, settings.norm)
    out_dir = output or Path("runs") / timm_name(arch)
    bar = None if as_json else _EpochBar(err, arch.name)
    try:
        result = run_train(spec, settings, out_dir, resume=resume, observer=bar)
    except KeyboardInterrupt:
        err.print(f"interrupted: the last finished epoch is in {out_dir}; add --resume to continue")
        raise typer.Exit(130) from None
    finally:
        if bar is not None:
            bar.stop()
    write_architecture(arch, out_dir / "architecture.json")  # what the checkpoint holds, readable by timm alone
    record = store_run(result, spec, settings, "train", store)
    if as_json:
        print_json(asdict(record))
        return
    out.print(f"{arch.name}: val acc {100 * record.accuracy:.1f}% after {record.plan.epochs} epochs at "
              f"{record.plan.resolution}px; latency {record.latency_ms:.2f} ms at {record.resolution}px; "
              f"checkpoint {result.checkpoint} (run {record.run})")


@app.command()
def baselines(
    models: Annotated[Optional[list[str]], typer.Option("--models", help="baseline to train (repeatable) [default: the "
                                                        "papers' networks; width variants such as mobilenetv2_075 by name]")] = None,
    data: Annotated[str, typer.Option(help="digits | mnist | a folder of class sub-folders")] = "digits",
    epochs: Annotated[str, typer.Option(help="auto (BiT-HyperRule) or N")] = "auto",
    resolution: Annotated[str, typer.Option(help="auto (BiT-HyperRule) or N (a multiple of 32)")] = "auto",
    mixup: Annotated[str, typer.Option(help="auto (BiT-HyperRule) or alpha")] = "auto",
    batch_size: BatchOpt = 64,
    micro_batch: MicroBatchOpt = 64,
    opt: Annotated[str, typer.Option(help="timm optimizer")] = "adamw",
    lr: LrOpt = "auto",
    sched: SchedOpt = "auto",
    weight_decay: Annotated[float, typer.Option(help="weight decay")] = 0.05,
    ema_decay: Annotated[float, typer.Option(help="EMA decay; 0 turns it off")] = 0.998,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    latency_resolution: Annotated[int, typer.Option(help="input size for latency, params and MACs")] = 224,
    threads: Annotated[int, typer.Option(help="CPU threads for latency")] = 1,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for the checkpoints (one sub-folder each)")] = Path("runs/baselines"),
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the papers' networks with `nas train`'s recipe and store them beside found architectures."""
    from nas.baselines import DEFAULT_BASELINES, run_baselines
    from storage import Store

    store = Store.open(storage)
    settings = _settings(data, epochs, resolution, mixup, "bn", batch_size, micro_batch, opt, lr, sched,
                         weight_decay, ema_decay, seed, None, threads)
    bars: list[_EpochBar] = []

    def observer_for(name: str) -> _EpochBar | None:
        if as_json:
            return None
        if bars:
            bars[-1].stop()
        bars.append(_EpochBar(err, name))
        return bars[-1]

    try:
        records = run_baselines(list(models or DEFAULT_BASELINES), settings, output, store, resolution=latency_resolution,
                                observer_for=observer_for)
    finally:
        if bars:
            bars[-1].stop()
    if as_json:
        print_json([asdict(r) for r in records])
        return
    from rich.table import Table

    from nas.render import fmt_count

    table = Table(title=f"baselines on {settings.data}, latency at {latency_resolution}px")
    for column in ("network", "val acc %", "latency ms", "± ms", "parameters", "MACs", "epochs", "run"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for r in records:
        table.add_row(r.name, f"{100 * r.accuracy:.1f}", f"{r.latency_ms:.2f}", f"{r.latency_spread_ms:.2f}",
                      fmt_count(r.params), fmt_count(r.macs), str(r.plan.epochs), str(r.run))
    out.print(table)
