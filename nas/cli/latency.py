"""`nas latency build|validate|predict|devices|check`: learn a device once, predict in microseconds,
and check an exported network's latency where it is deployed."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from nas.cli.bars import PhaseBars
from nas.cli.common import JsonOpt, StorageOpt, StudyOpt, app, err, out, print_json
from nas.errors import UsageError

latency_app = typer.Typer(no_args_is_help=True, help="Per-device latency tables: measure every layer once, then predict.")
app.add_typer(latency_app, name="latency")

BackendOpt = Annotated[str, typer.Option(help="torch (eager, default) | onnxruntime | cuda")]
ThreadsOpt = Annotated[int, typer.Option(help="CPU threads")]
AllocatorOpt = Annotated[str, typer.Option(help="kept (glibc keeps freed memory, nas's default) | default (a plain process)")]
SpaceOpt = Annotated[str, typer.Option(help="search space (see `nas spaces`)")]
TableResolutionOpt = Annotated[int, typer.Option("--resolution", help="input size the table is for")]


def _settings(backend: str, threads: int, resolution: int, allocator: str):
    from nas.latency import LatencySettings

    return LatencySettings.for_backend(backend, threads=threads, resolution=resolution, allocator=allocator)


@dataclass(frozen=True)
class _Prediction:
    """What `nas latency predict` prints; the measured figures only with ``--measure``."""

    name: str
    predicted_ms: float
    sum_ms: float
    calibrated_on: str | None
    extrapolated: list[str]
    layers_measured_now: int
    predict_us: float
    device: dict[str, Any]
    measured_ms: float | None = None
    spread_ms: float | None = None
    error_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.default is MISSING or getattr(self, f.name) is not None}


def _interrupted() -> typer.Exit:
    err.print("interrupted: every measured entry is stored; run the same command to resume")
    return typer.Exit(130)


@latency_app.command()
def build(
    space: SpaceOpt = "mbconv",
    backend: BackendOpt = "torch",
    threads: ThreadsOpt = 1,
    allocator: AllocatorOpt = "kept",
    resolution: TableResolutionOpt = 224,
    calibration: Annotated[int, typer.Option(help="whole networks measured to calibrate the sum of layers")] = 60,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure every layer SPACE can produce on this device (resumable), then calibrate."""
    from nas.latency import build_table, describe
    from storage import Store

    store = Store.open(storage)
    settings = _settings(backend, threads, resolution, allocator)
    try:
        with PhaseBars() as bars:
            result = build_table(store, space, settings, calibration_samples=calibration, progress=None if as_json else bars)
    except KeyboardInterrupt:
        raise _interrupted() from None
    calib = result.calibration
    if as_json:
        print_json(result.to_dict())
        return
    out.print(f"latency table for {describe(result.device)}: {result.entries} layers of space {result.space!r} "
              f"({result.measured_now} layer rounds measured now, {result.device['passes']} per layer), "
              f"built in {result.build_s:.0f} s")
    terms = " + ".join(f"{c:.4g} x {f}" for f, c in zip(calib.features, calib.coefficients, strict=True))
    out.print(f"calibration on {calib.samples} whole networks: latency = {calib.intercept:.3g} + {terms} "
              f"(leave-one-out error {calib.loo_rmse_pct:.1f}% RMS); check it with `nas latency validate --space {space}`")


@latency_app.command()
def validate(
    space: SpaceOpt = "mbconv",
    samples: Annotated[int, typer.Option(help="random networks of the space, never used in calibration")] = 100,
    backend: BackendOpt = "torch",
    threads: ThreadsOpt = 1,
    allocator: AllocatorOpt = "kept",
    resolution: TableResolutionOpt = 224,
    plot: Annotated[Optional[Path], typer.Option("-o", "--plot", help="scatter plot (HTML) [default: latency-validation-SPACE.html]")] = None,
    png: Annotated[bool, typer.Option(help="also write the plot as PNG")] = False,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure unseen random networks end to end and score the predictor against them."""
    from dashboards.figures import latency_model
    from nas.latency import validate_table
    from storage import Store

    store = Store.open(storage)
    settings = _settings(backend, threads, resolution, allocator)
    try:
        with PhaseBars() as bars:
            report = validate_table(store, space, settings, samples=samples, progress=None if as_json else bars)
    except KeyboardInterrupt:
        raise _interrupted() from None
    figure = latency_model([{"space": space, "device": report.device, "validation": report.to_dict()}])
    plot = plot or Path(f"latency-validation-{space}.html")
    figure.write_html(plot, include_plotlyjs=True)
    if png:
        figure.write_image(plot.with_suffix(".png"), width=900, height=700)
    if as_json:
        print_json({**report.summary(), "plot": str(plot), "points": [p.to_dict() for p in report.points]})
        return
    noise = report.measurement_noise
    table = Table(title=f"latency model on {samples} unseen networks of {space!r}")
    table.add_column("figure")
    table.add_column("predictor", justify="right")
    table.add_column("one measuring round vs another", justify="right")
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    table.add_row("within +-10%", pct(report.within_10pct), pct(noise.rerun_within_10pct))
    table.add_row("within +-5%", pct(report.within_5pct), pct(noise.rerun_within_5pct))
    table.add_row("RMS error", f"{report.rmse_ms:.3f} ms", f"{noise.rerun_rms_pct:.1f}%" if noise.rerun_rms_pct is not None else "-")
    table.add_row("Spearman / Kendall tau", f"{report.spearman:.3f} / {report.kendall_tau:.3f}", "")
    table.add_row("sum of layers, uncalibrated, within +-10%", pct(report.uncalibrated_within_10pct), "")
    ratio = report.sum_to_whole_ratio
    table.add_row("sum of layers / whole network", f"{ratio.mean:.2f} ({ratio.min:.2f}-{ratio.max:.2f})", "")
    table.add_row("interquartile range of timed runs (median)", "", f"{noise.median_iqr_pct:.1f}%")
    out.print(table)
    out.print(f"scatter plot: {plot}")


@latency_app.command()
def predict(
    ref: Annotated[str, typer.Argument(help="a paper network name, a trial number, or an architecture JSON file")],
    space: Annotated[Optional[str], typer.Option(help="whose calibration to use [default: the trial's space, else the table's]")] = None,
    backend: BackendOpt = "torch",
    threads: ThreadsOpt = 1,
    allocator: AllocatorOpt = "kept",
    resolution: Annotated[Optional[int], typer.Option(help="input size [default: the architecture's, else 224]")] = None,
    fill: Annotated[bool, typer.Option(help="measure layers the table lacks (this device, needs an idle CPU)")] = True,
    measure: Annotated[bool, typer.Option(help="also measure the whole network, to compare")] = False,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict a network's latency on this device from the table."""
    import time

    from nas.latency import MissingEntries, describe, fill_missing, load_predictor, measure_network
    from nas.results import resolve_architecture
    from storage import Store

    store = Store.open(storage)
    arch = resolve_architecture(ref, store, study)
    settings = _settings(backend, threads, resolution or arch.input_size(), allocator)
    predictor = load_predictor(store, settings, space or arch.provenance.get("space"))
    if fill:
        with PhaseBars() as bars:
            predictor, filled = fill_missing(store, predictor, arch.genotype, None if as_json else bars)
    else:
        filled = 0
        if missing := predictor.missing(arch.genotype):
            raise MissingEntries(missing)
    start = time.perf_counter()
    predicted = predictor(arch.genotype)
    predict_us = (time.perf_counter() - start) * 1e6
    features = predictor.features(arch.genotype)
    result = _Prediction(arch.name, predicted, features.sum_ms, predictor.space, predictor.calibration.outside(features),
                         filled, predict_us, predictor.fingerprint)
    if measure:
        measured = measure_network(arch.genotype, settings)
        result = replace(result, measured_ms=measured.latency_ms, spread_ms=measured.spread_ms,
                         error_pct=100 * (predicted / measured.latency_ms - 1))
    if as_json:
        print_json(result.to_dict())
        return
    line = f"{arch.name}: predicted {predicted:.2f} ms on {describe(predictor.fingerprint)}"
    if result.measured_ms is not None:
        line += f"; measured {result.measured_ms:.2f} ms +-{result.spread_ms:.2f} ({result.error_pct:+.1f}%)"
    out.print(line)
    if result.extrapolated:
        out.print(f"warning: outside the networks the calibration saw ({'; '.join(result.extrapolated)}): the prediction "
                  f"extrapolates; `--measure` checks it")
    if filled:
        out.print(f"{filled} layer(s) outside the table were measured and stored")


@latency_app.command()
def devices(storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """List the devices with a latency table, and how well each table predicts."""
    from nas.latency import SpaceSummary, describe, table_summaries
    from storage import Store

    summaries = table_summaries(Store.open(storage))
    if as_json:
        print_json([s.to_dict() for s in summaries])
        return
    if not summaries:
        out.print("no latency table yet; run `nas latency build --space SPACE`")
        return
    table = Table(title="latency tables")
    for column in ("id", "device", "entries", "space", "build", "calibration (LOO)", "validated within +-10% / +-5%"):
        table.add_column(column)
    for s in summaries:
        for i, model in enumerate(s.spaces or (SpaceSummary("-", None, None, None),)):
            calib, valid = model.calibration, model.validation
            table.add_row(
                str(s.id) if i == 0 else "", describe(s.fingerprint) if i == 0 else "", str(s.entries) if i == 0 else "",
                model.space, f"{model.build_s:.0f} s" if model.build_s else "-",
                f"{calib.samples} nets, {calib.loo_rmse_pct:.1f}%" if calib else "not calibrated",
                f"{100 * valid.within_10pct:.0f}% / {100 * valid.within_5pct:.0f}% of {valid.samples}" if valid else "not validated",
            )
    out.print(table)


def _environment(assignments: list[str], unset: list[str]) -> dict[str, str]:
    """This process's environment with ``NAME=VALUE`` assignments applied and ``unset`` names removed."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in unset}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--env takes NAME=VALUE, got {item!r}")
        env[name] = value
    return env


@latency_app.command()
def check(
    model: Annotated[Path, typer.Argument(help="an exported network: .onnx, TorchScript .pt, or a timm folder (local-dir:)")],
    env: Annotated[Optional[list[str]], typer.Option("--env", help="NAME=VALUE set in the timing process (repeatable)")] = None,
    unset: Annotated[Optional[list[str]], typer.Option("--unset", help="variable removed from its environment (repeatable)")] = None,
    threads: Annotated[Optional[int], typer.Option(help="intra-op threads [default: those nas measured with, else 1]")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="input size [default: the export's]")] = None,
    passes: Annotated[int, typer.Option(help="passes of 10 warm-up and 30 timed runs; the fastest median counts")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Time MODEL as a deployment runs it (a fresh process, only its runtime loaded, this environment
    or the one given) next to the latency nas measured for it, with the ratio."""
    from nas.latency.deployment import check_deployed

    result = check_deployed(model, _environment(env or [], unset or []), threads=threads, resolution=resolution,
                            passes=passes)
    if as_json:
        print_json(result.to_dict())
        return
    out.print(result.summary())
    if result.ratio is not None and result.ratio > 1.1 and result.allocator != (result.nas_device or {}).get("allocator"):
        out.print(f"this environment runs allocator {result.allocator!r}, nas measured with "
                  f"{result.nas_device['allocator']!r}: its DEPLOY.md gives the environment that reproduces nas's figure")
