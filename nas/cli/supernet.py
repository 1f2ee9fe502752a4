"""`nas supernet train`: one weight-sharing network over a search space (OFA/BigNAS sandwich rule)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nas.cli.common import JsonOpt, app, err, out, print_json

if TYPE_CHECKING:
    from nas.supernet import SupernetEpoch

supernet_app = typer.Typer(no_args_is_help=True, help="Weight-sharing supernets: train once, then estimate any "
                                                       "network of the space from inherited weights.")
app.add_typer(supernet_app, name="supernet")


class _SupernetBar:
    """One bar over all steps with the epoch, the running loss and the last largest/smallest accuracy;
    one line per finished epoch."""

    def __init__(self, console: Console, label: str) -> None:
        self.label = label
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}  largest {task.fields[largest]}  "
                                            "smallest {task.fields[smallest]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self.task = None
        self.epochs = 0
        self.steps_per_epoch = 1

    def started(self, steps: int, steps_per_epoch: int, resumed_step: int) -> None:
        self.epochs, self.steps_per_epoch = steps // steps_per_epoch, steps_per_epoch
        if resumed_step:
            self.progress.console.print(f"{self.label}: resuming at step {resumed_step} of {steps}")
        self.task = self.progress.add_task(self._epoch(resumed_step), total=steps, completed=resumed_step,
                                           loss="-", largest="-", smallest="-")
        self.progress.start()

    def _epoch(self, step: int) -> str:
        return f"{self.label} epoch {min(step // self.steps_per_epoch + 1, self.epochs)}/{self.epochs}"

    def step(self, step: int, loss: float) -> None:
        self.progress.update(self.task, completed=step, description=self._epoch(step), loss=f"{loss:.3f}")

    def epoch_done(self, record: SupernetEpoch) -> None:
        largest, smallest = f"{100 * record.largest_accuracy:.1f}%", f"{100 * record.smallest_accuracy:.1f}%"
        self.progress.update(self.task, largest=largest, smallest=smallest)
        self.progress.console.print(f"{self.label} epoch {record.epoch}/{self.epochs}: loss {record.loss:.4f}  "
                                    f"distill {record.distill_loss:.4f}  largest {largest}  smallest {smallest}")

    def stop(self) -> None:
        self.progress.stop()


@supernet_app.command("train")
def train_command(
    space: Annotated[str, typer.Option(help="search space (`nas spaces` lists them)")] = "mbconv",
    data: Annotated[str, typer.Option(help="digits | mnist | a folder of class sub-folders")] = "digits",
    resolution: Annotated[int, typer.Option(help="image size (the search's --proxy-resolution)")] = 16,
    epochs: Annotated[int, typer.Option(help="passes over the training split")] = 30,
    batch_size: Annotated[int, typer.Option(help="images per step (every sub-network of the step sees them)")] = 64,
    lr: Annotated[float, typer.Option(help="peak AdamW learning rate (cosine schedule)")] = 3e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (not on BatchNorm and biases)")] = 0.05,
    random_subnets: Annotated[int, typer.Option(help="random sub-networks per step, beside the largest and smallest")] = 2,
    seed: Annotated[int, typer.Option(help="seed of init, data order and sampled sub-networks")] = 0,
    save_every: Annotated[int, typer.Option(help="steps between checkpoints (also at every epoch's end)")] = 50,
    threads: Annotated[int, typer.Option(help="CPU threads (two wait on each other on a busy 2-core machine)")] = 1,
    name: Annotated[Optional[str], typer.Option(help="stored as supernets/NAME.safetensors [default: the space's name]")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the checkpoint from its last saved step")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train one network holding every network of SPACE; resumable after kill -9 from its last saved step."""
    from nas.supernet import SupernetSettings, supernet_path, train_supernet

    settings = SupernetSettings(space=space, data=data, resolution=resolution, epochs=epochs, batch_size=batch_size,
                                lr=lr, weight_decay=weight_decay, random_subnets=random_subnets, seed=seed,
                                save_every=save_every, threads=threads)
    path = supernet_path(name or space)
    bar = None if as_json else _SupernetBar(err, name or space)
    try:
        result = train_supernet(settings, path, resume=resume, observer=bar)
    except KeyboardInterrupt:
        err.print(f"interrupted: the last saved step is in {path}; add --resume to continue")
        raise typer.Exit(130) from None
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        print_json({"path": str(result.path), "steps": result.steps, "train_s": result.train_s,
                    "history": [asdict(r) for r in result.history]})
        return
    last = result.history[-1]
    took = f"{result.train_s / 60:.1f} min" if result.train_s >= 60 else f"{result.train_s:.0f} s"
    out.print(f"supernet {path}: {result.steps} steps in {took}; largest "
              f"{100 * last.largest_accuracy:.1f}%, smallest {100 * last.smallest_accuracy:.1f}% val acc")
