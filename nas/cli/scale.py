"""`nas scale grid|family|show`: EfficientNet compound scaling of a found or paper network."""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nas.cli.common import JsonOpt, StorageOpt, StudyOpt, app, err, open_hints, out, print_json

scale_app = typer.Typer(no_args_is_help=True, help="Compound scaling (EfficientNet): the alpha/beta/gamma grid, "
                                                    "families of scaled networks, one scaled network.")
app.add_typer(scale_app, name="scale")

BaseArg = Annotated[str, typer.Argument(help="a paper network name, a trial number (of --study) or an architecture file")]
ResolutionOpt = Annotated[Optional[int], typer.Option(help="the base's input size [default: the base's own, else 224]")]
AlphaOpt = Annotated[Optional[float], typer.Option(help="depth coefficient >= 1 [default: 1.2, EfficientNet's]")]
BetaOpt = Annotated[Optional[float], typer.Option(help="width coefficient >= 1 [default: 1.1]")]
GammaOpt = Annotated[Optional[float], typer.Option(help="resolution coefficient >= 1 [default: 1.15]")]
FamilyOpt = Annotated[Optional[str], typer.Option(help="a released family instead of coefficients: efficientnet (B0..B7)")]


class _GridProgress:
    """A progress bar over the grid's points, one line per finished trial."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console)
        self.task = None

    def started(self, study_name: str, total: int, done: int) -> None:
        self.task = self.progress.add_task(study_name, total=total, completed=done)
        self.progress.start()

    def trial_finished(self, trial) -> None:
        from nas.scale.grid import PARAM
        from storage import TrialRecord

        record = TrialRecord.from_trial(trial)
        point = f"alpha,beta,gamma = {trial.params.get(PARAM)}"
        if trial.state.name == "COMPLETE":
            line = (f"trial {trial.number}: {point}  {record.resolution} px  acc {100 * record.accuracy:.1f}%  "
                    f"{record.latency_ms:.2f} ms  reward {trial.value:.4f}")
        else:
            line = f"trial {trial.number}: {point}  {trial.state.name} {record.fail_reason or ''}".rstrip()
        self.progress.console.print(line)
        self.progress.update(self.task, advance=1)

    def stop(self) -> None:
        self.progress.stop()


def _shape_columns(table: Table) -> None:
    for column in ("alpha,beta,gamma", "FLOPs x", "depth x", "width x", "res", "blocks", "stem", "head", "params", "MACs"):
        table.add_column(column, justify="left" if column == "alpha,beta,gamma" else "right")


def _shape_cells(p) -> list[str]:
    from nas.render import fmt_count

    return [p.label, f"{p.alpha * p.beta**2 * p.gamma**2:.3f}", f"{p.depth:g}", f"{p.width:g}", str(p.resolution),
            str(p.blocks), str(p.stem_size), str(p.num_features), fmt_count(p.params), fmt_count(p.macs)]


@scale_app.command()
def grid(
    base: BaseArg,
    step: Annotated[float, typer.Option(help="grid step of alpha, beta and gamma")] = 0.05,
    tolerance: Annotated[float, typer.Option(help="allowed |alpha*beta^2*gamma^2 - 2|")] = 0.05,
    max_value: Annotated[float, typer.Option("--max", help="largest value of each coefficient")] = 2.0,
    resolution: ResolutionOpt = None,
    target_latency: Annotated[Optional[str], typer.Option("--target-latency", help="reward target T, e.g. 20ms [default: the base's latency x 2]")] = None,
    reward: Annotated[str, typer.Option(help="soft | hard | tunas")] = "soft",
    reward_weight: Annotated[Optional[float], typer.Option(help="latency exponent w (soft/hard) or beta (tunas), <= 0")] = None,
    data: Annotated[str, typer.Option(help="digits | mnist | a folder of class sub-folders")] = "digits",
    epochs: Annotated[int, typer.Option(help="proxy training epochs")] = 4,
    batch_size: Annotated[int, typer.Option(help="proxy training batch size")] = 32,
    proxy_resolution: Annotated[int, typer.Option(help="proxy image size of the base; each point's is x gamma")] = 16,
    threads: Annotated[int, typer.Option(help="CPU threads for latency")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the grid points and scaled shapes; train nothing")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="plot file [default: STUDY.html next to the database]")] = None,
    grid_study: Annotated[Optional[str], typer.Option(help="the grid's study name [default: scale-BASE]")] = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train BASE scaled at phi = 1 by every (alpha, beta, gamma) on the grid; resumable."""
    from nas.latency import LatencySettings
    from nas.render import fmt, fmt_count
    from nas.proxy import ProxySettings
    from nas.scale import GridConfig, plan_grid, run_grid
    from storage import Store
    from nas.units import parse_latency_ms

    import optuna

    config = GridConfig(
        base=base, step=step, tolerance=tolerance, max_value=max_value, resolution=resolution,
        target_latency_ms=parse_latency_ms(target_latency) if target_latency else None, reward=reward,
        reward_weight=reward_weight, data=data, proxy=ProxySettings(epochs=epochs, batch_size=batch_size,
                                                                    resolution=proxy_resolution),
        latency=LatencySettings(threads=threads), base_study=study, study=grid_study,
    )
    store = Store.open(storage)
    if dry_run:
        arch, base_resolution, points = plan_grid(config, store)
        if as_json:
            print_json({"base": arch.name, "base_resolution": base_resolution, "phi": 1,
                        "points": [asdict(p) for p in points]})
            return
        table = Table(title=f"{len(points)} grid points: {arch.name} at phi = 1 (base {base_resolution} px)")
        _shape_columns(table)
        for p in points:
            table.add_row(*_shape_cells(p))
        out.print(table)
        return
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the progress bar reports each trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    observer = _GridProgress(err) if not as_json else None
    try:
        result = run_grid(config, store, observer, output)
    except KeyboardInterrupt:
        err.print("interrupted: every finished point is stored; run the same command to resume")
        raise typer.Exit(130) from None
    finally:
        if observer:
            observer.stop()
    best = {"best_accuracy": result.best_accuracy, "best_reward": result.best_reward}
    if as_json:
        print_json({"study": result.study_name, "storage": result.storage_url, "base": result.base,
                    "base_resolution": result.base_resolution, "target_latency_ms": result.target_latency_ms,
                    "reward": result.reward, "ran": result.ran, "wall_s": result.wall_s,
                    "points": [asdict(p) for p in result.points],
                    **{k: asdict(v) if v else None for k, v in best.items()},
                    "plot": str(result.plot) if result.plot else None})
        return
    table = Table(title=f"study {result.study_name!r}: {result.base} at phi = 1, {result.ran} trial(s) run now "
                        f"in {result.wall_s:.0f} s")
    _shape_columns(table)
    for column in ("state", "acc %", "latency ms", "reward"):
        table.add_column(column, justify="right")
    for p in result.points:
        table.add_row(*_shape_cells(p), p.state or "-", fmt(None if p.accuracy is None else 100 * p.accuracy, ".1f"),
                      fmt(p.latency_ms, ".2f"), fmt(p.reward, ".4f"))
    out.print(table)
    out.print(f"reward {result.reward}, T = {result.target_latency_ms:.3g} ms")
    for label, p in best.items():
        if p is not None:
            out.print(f"{label.replace('_', ' by ')}: alpha {p.alpha:g}, beta {p.beta:g}, gamma {p.gamma:g} "
                      f"(trial {p.trial}: acc {100 * p.accuracy:.1f}%, {p.latency_ms:.2f} ms, {fmt_count(p.macs)} MACs)")
    if result.plot:
        out.print(f"plot: {result.plot}")
    for line in open_hints(storage, result.storage_url, result.study_name):
        out.print(line, soft_wrap=True, highlight=False)


@scale_app.command()
def family(
    base: BaseArg,
    alpha: AlphaOpt = None,
    beta: BetaOpt = None,
    gamma: GammaOpt = None,
    family: FamilyOpt = None,
    phi: Annotated[str, typer.Option(help="a phi or a range LOW..HIGH")] = "0..7",
    resolution: ResolutionOpt = None,
    measure: Annotated[bool, typer.Option("--measure/--no-measure", help="measure each member's latency at its resolution")] = True,
    threads: Annotated[int, typer.Option(help="CPU threads for latency")] = 1,
    out_dir: Annotated[Optional[Path], typer.Option("--output", "-o", help="folder for the architecture files [default: family-BASE/]")] = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write BASE scaled to each phi as architecture files and store them as `scale` runs."""
    from nas.latency import LatencySettings
    from nas.render import fmt, fmt_count
    from nas.scale import FamilyConfig, build_family, coefficients_from, parse_phis
    from storage import Store

    config = FamilyConfig(base=base, coefficients=coefficients_from(alpha, beta, gamma, family), family=family,
                          phis=parse_phis(phi), resolution=resolution, measure=measure,
                          latency=LatencySettings(threads=threads), out_dir=out_dir, base_study=study)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=as_json, transient=True)
    with progress:
        task = progress.add_task("measuring" if measure else "scaling", total=len(config.phis))
        rows = build_family(config, Store.open(storage), lambda row: progress.update(task, advance=1))
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    source = family or "alpha {:g}, beta {:g}, gamma {:g}".format(*asdict(config.coefficients).values())
    table = Table(title=f"{base} scaled by {source}")
    for column in ("phi", "depth x", "width x", "blocks", "res", "params", "MACs", "MACs / phi=0", "2^phi",
                   "latency ms", "± ms", "predicted ms", "file"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for r in rows:
        table.add_row(str(r.phi), f"{r.depth:g}", f"{r.width:g}", str(r.blocks), str(r.resolution), fmt_count(r.params),
                      fmt_count(r.macs), f"{r.macs_ratio:.2f}", f"{r.expected_ratio:g}", fmt(r.latency_ms, ".2f"),
                      fmt(r.latency_spread_ms, ".2f"), fmt(r.predicted_ms, ".2f"), str(r.path))
    out.print(table)


@scale_app.command()
def show(
    base: BaseArg,
    phi: Annotated[int, typer.Option(help="the family member, >= 0")],
    alpha: AlphaOpt = None,
    beta: BetaOpt = None,
    gamma: GammaOpt = None,
    family: FamilyOpt = None,
    resolution: ResolutionOpt = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print BASE scaled to PHI: blocks, resolution, params and MACs (nothing is written)."""
    from nas.render import block_rows, block_table, fmt_count
    from nas.scale import coefficients_from, show_scaled
    from storage import Store

    arch, params, macs = show_scaled(base, phi, coefficients_from(alpha, beta, gamma, family), family,
                                     Store.open(storage), resolution, study)
    if as_json:
        print_json({**arch.to_dict(), "params": params, "macs": macs, "blocks": block_rows(arch.genotype)})
        return
    out.print(block_table(arch.genotype, arch.name))
    p = arch.provenance
    out.print(f"depth x{p['depth']:g}, width x{p['width']:g}, {arch.resolution}x{arch.resolution} px; "
              f"params {fmt_count(params)} ({params:,}), MACs {fmt_count(macs)}")
