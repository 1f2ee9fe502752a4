"""`nas refine`: NetAdapt refinement of a found or paper network to a tighter latency target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from nas.cli.bars import PhaseBars
from nas.cli.common import JsonOpt, StorageOpt, StudyOpt, app, err, nas_command, open_hints, out, print_json
from nas.errors import EXIT_NOT_REACHED

if TYPE_CHECKING:
    from nas.refine import RefineResult


def _print(result: RefineResult) -> None:
    table = Table(title=f"{result.start} refined to {result.target_latency_ms:g} ms (study {result.study})")
    for column in ("iteration", "trial", "kept proposal", "latency ms (priced)", "val acc % (short-tuned)"):
        table.add_column(column, justify="left" if column == "kept proposal" else "right")
    for step in result.path:
        table.add_row(str(step.iteration), str(step.trial), step.proposal, f"{step.latency_ms:.2f}", f"{100 * step.accuracy:.1f}")
    out.print(table)
    out.print(f"measured: {result.start_latency_ms:.2f} ms -> {result.end_latency_ms:.2f} ms ({result.speedup:.2f}x); "
              f"val acc after the same long fine-tuning: {100 * result.start_accuracy:.1f}% -> {100 * result.end_accuracy:.1f}%")
    for stage in result.arch_def:
        out.print("  " + "  ".join(stage))
    out.print(f"the result is trial {result.final_trial}: `{nas_command()} show {result.final_trial} --study {result.study}`")


@app.command()
def refine(
    ref: Annotated[str, typer.Argument(help="a trial number (of --study), a paper network name or an architecture file")],
    target_latency: Annotated[str, typer.Option("--target-latency", help="latency to reach on this device, e.g. 15ms")],
    start_latency: Annotated[Optional[str], typer.Option(
        "--start-latency", help="the start's latency as measured elsewhere (its search), e.g. 20ms: the refinement "
                                "anchors on it [default: measured]")] = None,
    decay: Annotated[float, typer.Option(help="each iteration's cut is the last one's times this (NetAdapt)")] = 0.96,
    step_fraction: Annotated[float, typer.Option(help="the first iteration's cut, as a fraction of the start's latency")] = 0.025,
    short_tune: Annotated[int, typer.Option(help="fine-tuning steps per proposal")] = 40,
    long_tune: Annotated[int, typer.Option(help="fine-tuning steps for the result (and for the start it is compared with)")] = 180,
    pretrain: Annotated[int, typer.Option(help="steps that train the start from scratch on the proxy task")] = 180,
    select: Annotated[str, typer.Option(help="ratio (accuracy change per ms saved, MobileNetV3) | accuracy (NetAdapt)")] = "ratio",
    data: Annotated[str, typer.Option(help="digits | mnist | a folder of class sub-folders")] = "digits",
    proxy_resolution: Annotated[int, typer.Option(help="image size of the proxy task")] = 16,
    resolution: Annotated[Optional[int], typer.Option(help="input size for latency [default: the architecture's, else 224]")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for latency")] = 1,
    seed: Annotated[int, typer.Option(help="seed of initialisation and data order")] = 0,
    refine_study: Annotated[Optional[str], typer.Option(help="the refinement's study [default: refine-NAME-TARGETms]")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="also write the result as an architecture file")] = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Shrink a network layer by layer until it meets --target-latency (NetAdapt), weights inherited.

    The same command resumes an interrupted refinement after its last finished iteration."""
    from dataclasses import replace

    import optuna

    from nas.architecture import write_architecture
    from nas.export import usable_architecture
    from nas.latency import LatencySettings
    from nas.refine import RefineConfig, refine as run_refine
    from nas.units import parse_latency_ms
    from storage import Store

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the progress bars report each step
    store = Store.open(storage)
    arch = usable_architecture(ref, store, study)
    config = RefineConfig(parse_latency_ms(target_latency), decay=decay, step_fraction=step_fraction, short_tune=short_tune,
                          long_tune=long_tune, pretrain=pretrain, select=select, data=data, proxy_resolution=proxy_resolution,
                          seed=seed, latency=LatencySettings(resolution=resolution or arch.input_size(), threads=threads),
                          study=refine_study, start_latency_ms=parse_latency_ms(start_latency, "--start-latency") if start_latency else None)
    try:
        if as_json:
            result = run_refine(arch, config, store)
        else:
            with PhaseBars() as bars:
                result = run_refine(arch, config, store, bars)
    except KeyboardInterrupt:
        err.print("interrupted: finished iterations are stored; run the same command again to resume")
        raise typer.Exit(130) from None
    if output is not None:
        refined = replace(arch, name=f"{result.study}/{result.final_trial}",
                          genotype=type(arch.genotype).from_arch_def(result.arch_def, **result.network),
                          resolution=config.latency.resolution,
                          provenance={"study": result.study, "trial": result.final_trial, "latency_ms": result.end_latency_ms,
                                      "accuracy": result.end_accuracy})
        write_architecture(refined, output)
    if as_json:
        print_json(result.to_dict())
    else:
        _print(result)
        if result.end_latency_ms > result.target_latency_ms and result.reached:
            out.print(f"note: measured {result.end_latency_ms:.2f} ms after the long fine-tuning is above the target, "
                      "which the result met beside the start before it; the machine's speed drifts between the two")
        for line in open_hints(storage, str(store), result.study):
            out.print(line)
    if not result.reached:
        print(f"error: target not reached: {result.reason}; stopped at the closest network (trial {result.final_trial})",
              file=sys.stderr)
        raise typer.Exit(EXIT_NOT_REACHED)
