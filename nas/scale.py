"""Compound scaling as a tool: the coefficient grid as a resumable Optuna study, scaled families
as architecture files and ``scale`` runs, one scaled network on its own.

The grid scales the base at phi = 1 with every feasible (alpha, beta, gamma), measures each
network's latency at its scaled resolution, trains it on the proxy task and stores it as a
trial under the storage contract (plus ``alpha``, ``beta``, ``gamma``, ``resolution``). Optuna's
``GridSampler`` hands out the points, so the study reads like any other in optuna-dashboard.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from nas.architecture import Architecture, write_architecture
from nas.data import BUILTIN, load_proxy_data
from nas.errors import StudyError, UsageError
from nas.latency import LatencySettings, device_fingerprint, measure_latency
from nas.latency_table import find_predictor
from nas.metrics import count_macs, count_params
from nas.proxy import ProxySettings, train_proxy
from nas.results import resolve_architecture
from nas.reward import Reward
from nas.search import HEARTBEAT_S, INTERRUPTED
from scaling import (
    EFFICIENTNET_COEFFICIENTS, FAMILIES, Coefficients, Member, grid_points, released_family, scale, tolerance_needed,
)
from search_spaces import Genotype, build_model
from storage import add_run, list_runs, open_optuna_storage, resolve_url

GRID_PHI = 1  # EfficientNet searches alpha, beta, gamma on the network twice the base's FLOPs
PARAM = "point"  # the grid's one Optuna parameter: "alpha,beta,gamma" (the feasible set is no product)
TARGET_FACTOR = 2.0  # default latency target: the base's latency x 2, as phi = 1 doubles the FLOPs
_STUDY_KEYS = ("base_arch", "base_resolution", "grid", "dataset", "device", "proxy", "reward", "reward_weight")


def network_size(genotype: Genotype, resolution: int) -> tuple[int, int]:
    """(params, MACs), both counted on the meta device: sizing B7 allocates nothing."""
    with torch.device("meta"):
        params = count_params(build_model(genotype))
    return params, count_macs(genotype, resolution)


def scaled_architecture(base: Architecture, member: Member, coefficients: Coefficients | None,
                        family: str | None, base_resolution: int) -> Architecture:
    """``base`` scaled to ``member``, named ``BASE@phi=N``, with where it came from."""
    provenance = {"base": base.name, "base_resolution": base_resolution, **_coefficient_fields(coefficients),
                  "family": family, "phi": member.phi, "depth": member.depth, "width": member.width,
                  "drop_rate": member.drop_rate}
    if base.provenance:
        provenance["base_provenance"] = base.provenance
    return Architecture(f"{base.name}@phi={member.phi}", scale(base.genotype, member), member.resolution, provenance)


def _coefficient_fields(coefficients: Coefficients | None) -> dict[str, float | None]:
    """alpha, beta, gamma always present (None for a released family, which publishes multipliers)."""
    return asdict(coefficients) if coefficients else {"alpha": None, "beta": None, "gamma": None}


def _base_resolution(base: Architecture, resolution: int | None) -> int:
    value = resolution or base.input_size()
    if not 32 <= value <= 1024:
        raise UsageError(f"--resolution must be between 32 and 1024 pixels, got {value}")
    return value


# --- the grid at phi = 1 ---------------------------------------------------------------------
@dataclass(frozen=True)
class GridConfig:
    """Everything ``run_grid`` needs; the same config run again resumes the study."""

    base: str  # a seed name, a trial number of ``base_study`` or an architecture file
    step: float = 0.05
    tolerance: float = 0.05
    max_value: float = 2.0
    resolution: int | None = None  # the base's input size; None: the base's own, else 224
    target_latency_ms: float | None = None  # None: the base's latency x 2 (kept by the study)
    reward: str = "soft"
    reward_weight: float | None = None
    data: str = "digits"
    proxy: ProxySettings = field(default_factory=ProxySettings)  # its resolution grows by gamma per point
    latency: LatencySettings = field(default_factory=LatencySettings)  # threads and runs; resolution per point
    storage: str | None = None
    base_study: str | None = None  # the study a trial-number BASE belongs to
    study: str | None = None  # None: scale-<base>

    def __post_init__(self) -> None:
        if not self.data:
            raise UsageError(f"--data: give a built-in dataset ({', '.join(BUILTIN)}) or a folder")
        Reward(self.reward, self.target_latency_ms or 1.0, self.reward_weight)  # validates kind and weight
        self.points  # noqa: B018 -- an empty or oversized grid is refused when the config is made

    @property
    def points(self) -> list[Coefficients]:
        try:
            points = grid_points(self.step, self.tolerance, self.max_value)
        except ValueError as err:
            raise UsageError(f"grid: {err}") from None
        if not points:
            wider = tolerance_needed(self.step, self.max_value)
            count = len(grid_points(self.step, wider, self.max_value))
            raise UsageError(f"no (alpha, beta, gamma) on the {self.step:g} grid up to {self.max_value:g} has "
                             f"alpha*beta^2*gamma^2 within {self.tolerance:g} of 2; --tolerance {wider:g} gives {count}")
        return points


@dataclass(frozen=True)
class GridPoint:
    """One grid point: its scaled shape and, once trained, its results (storage contract names)."""

    label: str
    alpha: float
    beta: float
    gamma: float
    depth: float
    width: float
    resolution: int
    blocks: int
    stem_size: int
    num_features: int
    params: int
    macs: int
    state: str | None = None  # None: not tried yet
    trial: int | None = None
    accuracy: float | None = None
    latency_ms: float | None = None
    latency_spread_ms: float | None = None
    reward: float | None = None
    fail_reason: str | None = None


@dataclass(frozen=True)
class GridResult:
    study_name: str
    storage_url: str
    base: str
    base_resolution: int
    target_latency_ms: float
    reward: str  # the reward's formula, for people
    ran: int  # trials this call finished
    wall_s: float
    points: list[GridPoint]
    best_accuracy: GridPoint | None
    best_reward: GridPoint | None
    plot: Path | None


class GridObserver(Protocol):
    """What a front end (the CLI's progress bar) hears from a running grid."""

    def started(self, study_name: str, total: int, done: int) -> None: ...

    def trial_finished(self, trial: FrozenTrial) -> None: ...


def _point_shape(base: Architecture, coefficients: Coefficients, base_resolution: int) -> GridPoint:
    member = coefficients.at(GRID_PHI, base_resolution)
    genotype = scale(base.genotype, member)
    params, macs = network_size(genotype, member.resolution)
    return GridPoint(coefficients.label(), coefficients.alpha, coefficients.beta, coefficients.gamma, member.depth,
                     member.width, member.resolution, genotype.depth, genotype.stem_size, genotype.num_features,
                     params, macs)


def plan_grid(config: GridConfig) -> tuple[Architecture, int, list[GridPoint]]:
    """The base, its resolution and every grid point's scaled shape; nothing trains (``--dry-run``)."""
    base = resolve_architecture(config.base, config.storage, config.base_study)
    base_resolution = _base_resolution(base, config.resolution)
    return base, base_resolution, [_point_shape(base, c, base_resolution) for c in config.points]


def _grid_study_name(config: GridConfig, base: Architecture) -> str:
    return config.study or "scale-" + base.name.replace("/", "-")


def _study_attrs(config: GridConfig, base: Architecture, base_resolution: int, device: dict, dataset: str) -> dict:
    return {"space": "scale-grid", "base": base.name, "base_arch": base.genotype.to_dict(),
            "base_resolution": base_resolution, "grid": {"step": config.step, "tolerance": config.tolerance,
                                                         "max": config.max_value},
            "dataset": dataset, "device": device, "proxy": asdict(config.proxy), "reward": config.reward,
            "reward_weight": config.reward_weight}


def _open_grid_study(config: GridConfig, storage, name: str, attrs: dict, labels: list[str],
                     base_latency: Callable[[], float]) -> optuna.Study:
    """Create the study, or load it and check it was made with the same base, grid and settings."""
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        stored = existing.user_attrs
        if stored.get("space") != "scale-grid":
            raise StudyError(f"study {name!r} is not a scaling grid; pick another --grid-study")
        for key in _STUDY_KEYS:
            if stored.get(key) != attrs[key]:
                raise StudyError(f"study {name!r} was created with {key}={stored.get(key)!r}, this grid has "
                                 f"{attrs[key]!r}; use the same settings or another --grid-study")
        target = stored["target_latency_ms"]
        if config.target_latency_ms is not None and config.target_latency_ms != target:
            raise StudyError(f"study {name!r} was created with target_latency_ms={target!r}; "
                             "use the same --target-latency or another --grid-study")
    else:  # measured before the study exists, so an interrupted first run leaves no half-made study
        measured = None if config.target_latency_ms is not None else base_latency()
        attrs = {**attrs, "base_latency_ms": measured,
                 "target_latency_ms": config.target_latency_ms or TARGET_FACTOR * measured}
    sampler = optuna.samplers.GridSampler({PARAM: labels}, seed=0)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", sampler=sampler,
                                pruner=optuna.pruners.NopPruner(), load_if_exists=True)
    if existing is None:
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["reward"])
    return study


def _point_of(trial: FrozenTrial) -> str | None:
    return trial.params.get(PARAM)


def _is_done(trial: FrozenTrial) -> bool:
    """Complete, or failed for a reason of its own (a diverged network is not run again)."""
    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason", INTERRUPTED) != INTERRUPTED)


def queue_unfinished(study: optuna.Study, labels: list[str]) -> int:
    """Queue again each point an interrupted run left unfinished; returns the points still to run.

    ``GridSampler`` counts a failed trial as visited and never hands its point out again. The
    copy keeps the failed trial's ``grid_id`` (as Optuna's heartbeat retry does): GridSampler
    reads it after every trial, and ``enqueue_trial`` would leave it out.
    """
    trials = study.get_trials(deepcopy=False)
    done = {_point_of(t) for t in trials if _is_done(t)}
    queued = {_point_of(t) for t in trials if t.state == TrialState.WAITING}
    failed = {_point_of(t): t for t in trials if t.state == TrialState.FAIL and "grid_id" in t.system_attrs}
    for label in labels:
        if label in failed and label not in done | queued:
            trial = failed[label]
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
                system_attrs={key: trial.system_attrs[key] for key in ("grid_id", "search_space")}))
    return sum(label not in done for label in labels)


def _grid_objective(config: GridConfig, base: Architecture, base_resolution: int, reward: Reward,
                    labels: dict[str, Coefficients]) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        try:
            coefficients = labels[trial.suggest_categorical(PARAM, list(labels))]
            member = coefficients.at(GRID_PHI, base_resolution)
            genotype = scale(base.genotype, member)
            latency = replace(config.latency, resolution=member.resolution)
            model = build_model(genotype)
            params, macs = count_params(model), count_macs(genotype, member.resolution)
            measured = measure_latency(model, latency)
            del model
            # the proxy images grow with gamma too (to the nearest pixel: rounding 16 px to a
            # multiple of 8 would erase every gamma below 1.25)
            proxy = replace(config.proxy, resolution=round(config.proxy.resolution * coefficients.gamma))
            for key, value in {
                "arch_def": genotype.arch_def, "network": genotype.network(), "arch_key": genotype.key,
                "params": params, "macs": macs, "latency_ms": measured.latency_ms,
                "latency_spread_ms": measured.spread_ms, "load_avg": measured.load_avg,
                "device": device_fingerprint(latency), **asdict(coefficients), "resolution": member.resolution,
                "depth": member.depth, "width": member.width, "proxy_resolution": proxy.resolution,
            }.items():
                trial.set_user_attr(key, value)

            def on_epoch(epoch: int, accuracy: float) -> None:
                trial.set_user_attr("accuracy", accuracy)
                trial.report(reward(accuracy, measured.latency_ms), epoch)

            accuracy = train_proxy(genotype, load_proxy_data(config.data, proxy.resolution), proxy, on_epoch)
        except (Exception, KeyboardInterrupt) as err:
            reason = INTERRUPTED if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {err}"[:500]
            trial.set_user_attr("fail_reason", reason)
            raise
        return reward(accuracy, measured.latency_ms)

    return objective


def grid_points_of(study: optuna.Study, shapes: list[GridPoint]) -> list[GridPoint]:
    """Each grid point with its trial: the complete one, else the latest."""
    latest: dict[str, FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False):
        label = _point_of(trial)
        if label is not None and (label not in latest or latest[label].state != TrialState.COMPLETE):
            latest[label] = trial
    points = []
    for shape in shapes:
        trial = latest.get(shape.label)
        if trial is None:
            points.append(shape)
            continue
        attrs = trial.user_attrs
        points.append(replace(
            shape, state=trial.state.name, trial=trial.number, accuracy=attrs.get("accuracy"),
            latency_ms=attrs.get("latency_ms"), latency_spread_ms=attrs.get("latency_spread_ms"),
            reward=trial.value if trial.state == TrialState.COMPLETE else None,
            fail_reason=attrs.get("fail_reason")))
    return points


def run_grid(config: GridConfig, observer: GridObserver | None = None, plot_path: Path | None = None) -> GridResult:
    """Run (or resume) the grid until every point has a finished trial, then report and plot."""
    start = time.perf_counter()
    data = load_proxy_data(config.data, config.proxy.resolution)  # a bad --data fails before anything is written
    base, base_resolution, shapes = plan_grid(config)
    labels = {c.label(): c for c in config.points}
    url = resolve_url(config.storage)
    storage = open_optuna_storage(url, heartbeat_interval=HEARTBEAT_S)
    base_latency = replace(config.latency, resolution=base_resolution)
    name = _grid_study_name(config, base)
    attrs = _study_attrs(config, base, base_resolution, device_fingerprint(base_latency), data.name)
    study = _open_grid_study(config, storage, name, attrs, list(labels),
                             lambda: measure_latency(build_model(base.genotype), base_latency).latency_ms)
    reward = Reward(config.reward, study.user_attrs["target_latency_ms"], config.reward_weight)
    finished_before = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))
    remaining = queue_unfinished(study, list(labels))
    if observer is not None:
        observer.started(name, len(labels), len(labels) - remaining)
    callbacks = [lambda _study, trial: observer.trial_finished(trial)] if observer is not None else []
    objective = _grid_objective(config, base, base_resolution, reward, labels)
    while remaining:
        # GridSampler stops the study once no point is unvisited, even with retries queued: go round
        study.optimize(objective, n_trials=remaining, catch=(Exception,), callbacks=callbacks)
        remaining, before = queue_unfinished(study, list(labels)), remaining
        if remaining >= before:
            break
    points = grid_points_of(study, shapes)
    complete = [p for p in points if p.state == TrialState.COMPLETE.name]
    best_accuracy = max(complete, key=lambda p: (p.accuracy, -p.macs), default=None)
    best_reward = max(complete, key=lambda p: (p.reward, -p.latency_ms), default=None)
    plot = None
    if complete:
        plot = plot_grid(points, plot_path or default_plot_path(url, name), best_accuracy, best_reward,
                         f"{name}: accuracy of {base.name} scaled at phi = 1")
    ran = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))) - finished_before
    return GridResult(name, url, base.name, base_resolution, reward.target_ms, reward.describe(), ran,
                      time.perf_counter() - start, points, best_accuracy, best_reward, plot)


def default_plot_path(url: str, study_name: str) -> Path:
    """Next to an SQLite file, else in the working directory."""
    parsed = make_url(url)
    folder = Path(parsed.database).parent if parsed.get_backend_name() == "sqlite" and parsed.database else Path()
    return folder / f"{study_name}.html"


def plot_grid(points: list[GridPoint], path: Path, best_accuracy: GridPoint | None, best_reward: GridPoint | None,
              title: str) -> Path:
    """Accuracy against MACs and against latency, one marker per trained point, in one
    self-contained HTML file (plotly.js inside: it opens offline)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    done = [p for p in points if p.accuracy is not None and p.latency_ms is not None]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("accuracy vs MACs", "accuracy vs latency"))
    hover = [f"alpha {p.alpha:g}, beta {p.beta:g}, gamma {p.gamma:g}<br>{p.resolution} px, {p.blocks} blocks"
             f"<br>reward {p.reward if p.reward is not None else '-'}" for p in done]
    marks = {"best accuracy": best_accuracy, "best reward": best_reward}
    for col, x_of, axis in ((1, lambda p: p.macs / 1e6, "MACs (M)"), (2, lambda p: p.latency_ms, "latency (ms)")):
        fig.add_trace(go.Scatter(x=[x_of(p) for p in done], y=[p.accuracy for p in done], mode="markers+text",
                                 text=[p.label for p in done], textposition="top center", hovertext=hover,
                                 name="grid points", showlegend=col == 1, marker={"size": 9}), row=1, col=col)
        for symbol, (label, p) in zip(("star", "diamond"), marks.items(), strict=True):
            if p is not None:
                fig.add_trace(go.Scatter(x=[x_of(p)], y=[p.accuracy], mode="markers", name=f"{label}: {p.label}",
                                         showlegend=col == 1, marker={"size": 16, "symbol": symbol}), row=1, col=col)
        fig.update_xaxes(title_text=axis, row=1, col=col)
    fig.update_yaxes(title_text="proxy accuracy", row=1, col=1)
    fig.update_layout(title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True)
    return path


# --- families --------------------------------------------------------------------------------
def parse_phis(text: str) -> tuple[int, ...]:
    """``'3'`` -> (3,); ``'1..7'`` -> (1, ..., 7); a negative phi or a reversed range is refused."""
    low, sep, high = text.partition("..")
    try:
        first, last = int(low), int(high) if sep else int(low)
    except ValueError:
        raise UsageError(f"--phi: {text!r} is not a phi or a range; write e.g. 3 or 1..7") from None
    if first < 0:
        raise UsageError(f"--phi must be >= 0, got {first}")
    if last < first:
        raise UsageError(f"--phi: empty range {text!r}; write LOW..HIGH with LOW <= HIGH")
    return tuple(range(first, last + 1))


def family_members(coefficients: Coefficients | None, family: str | None, phis: tuple[int, ...],
                   base_resolution: int) -> list[Member]:
    """The members for ``phis`` from the coefficients or from the released family ``family``."""
    if family is None:
        return [(coefficients or EFFICIENTNET_COEFFICIENTS).at(phi, base_resolution) for phi in phis]
    try:
        members = released_family(family, base_resolution)
    except ValueError as err:
        raise UsageError(f"--family: {err}") from None
    missing = [phi for phi in phis if phi >= len(members)]
    if missing:
        raise UsageError(f"--phi: family {family!r} has phi 0..{len(members) - 1}, not {missing[0]}")
    return [members[phi] for phi in phis]


def coefficients_from(alpha: float | None, beta: float | None, gamma: float | None,
                      family: str | None) -> Coefficients | None:
    """The coefficients given (EfficientNet's for those left out), or None for a released family."""
    given = [v for v in (alpha, beta, gamma) if v is not None]
    if family is not None:
        if given:
            raise UsageError("give --family or --alpha/--beta/--gamma, not both")
        if family not in FAMILIES:
            raise UsageError(f"--family: unknown family {family!r}; known: {', '.join(FAMILIES)}")
        return None
    default = EFFICIENTNET_COEFFICIENTS
    try:
        return Coefficients(default.alpha if alpha is None else alpha, default.beta if beta is None else beta,
                            default.gamma if gamma is None else gamma)
    except ValueError as err:
        raise UsageError(f"--{str(err).split()[0]}: {err}") from None


@dataclass(frozen=True)
class FamilyConfig:
    base: str
    coefficients: Coefficients | None = EFFICIENTNET_COEFFICIENTS  # None: the released ``family``
    family: str | None = None
    phis: tuple[int, ...] = tuple(range(8))
    resolution: int | None = None  # the base's input size; None: the base's own, else 224
    measure: bool = True
    latency: LatencySettings = field(default_factory=LatencySettings)  # threads and runs; resolution per member
    out_dir: Path | None = None  # None: family-<base>/
    storage: str | None = None
    base_study: str | None = None

    def __post_init__(self) -> None:
        if (self.coefficients is None) == (self.family is None):
            raise UsageError("give either coefficients or a released --family")
        if not self.phis or min(self.phis) < 0:
            raise UsageError(f"--phi must be >= 0, got {min(self.phis, default=None)}")


@dataclass(frozen=True)
class FamilyRow:
    phi: int
    name: str
    path: Path
    depth: float  # multipliers of the base
    width: float
    resolution: int
    blocks: int
    stem_size: int
    num_features: int
    params: int
    macs: int
    macs_ratio: float  # to the base (phi = 0) at its resolution
    expected_ratio: float  # 2^phi, what the FLOPs constraint aims for
    latency_ms: float | None
    latency_spread_ms: float | None
    predicted_ms: float | None  # from this device's latency table at the member's resolution, if built
    drop_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def _run_key(name: str, architecture: dict, resolution: int, device: dict | None) -> str:
    return json.dumps([name, architecture, resolution, device], sort_keys=True)


def build_family(config: FamilyConfig, on_member: Callable[[FamilyRow], None] | None = None) -> list[FamilyRow]:
    """Write one architecture file per phi, store each member as a ``scale`` run, return the rows.

    Running the same command again rewrites the files but stores no run twice.
    """
    base = resolve_architecture(config.base, config.storage, config.base_study)
    base_resolution = _base_resolution(base, config.resolution)
    members = family_members(config.coefficients, config.family, config.phis, base_resolution)
    out_dir = config.out_dir or Path(f"family-{base.name.replace('/', '-')}")
    url = resolve_url(config.storage)
    stored = {_run_key(r["name"], r["architecture"], r["resolution"], r["device"]) for r in list_runs(url, kind="scale")}
    _, base_macs = network_size(base.genotype, base_resolution)
    rows = []
    for member in members:
        arch = scaled_architecture(base, member, config.coefficients, config.family, base_resolution)
        params, macs = network_size(arch.genotype, member.resolution)
        measured = device = None
        if config.measure:
            latency = replace(config.latency, resolution=member.resolution)
            measured = measure_latency(build_model(arch.genotype), latency)
            device = device_fingerprint(latency)
        predictor = find_predictor(url, replace(config.latency, resolution=member.resolution))
        predicted = predictor(arch.genotype) if predictor and not predictor.missing(arch.genotype) else None
        path = write_architecture(arch, out_dir / f"{base.name.replace('/', '-')}-phi{member.phi}.json")
        row = FamilyRow(member.phi, arch.name, path, member.depth, member.width, member.resolution,
                        arch.genotype.depth, arch.genotype.stem_size, arch.genotype.num_features, params, macs,
                        macs / base_macs, 2.0**member.phi, measured.latency_ms if measured else None,
                        measured.spread_ms if measured else None, predicted, member.drop_rate)
        if _run_key(arch.name, arch.to_dict(), member.resolution, device) not in stored:
            add_run(url, kind="scale", name=arch.name, study=base.provenance.get("study"),
                    trial=base.provenance.get("trial"), architecture=arch.to_dict(), resolution=member.resolution,
                    params=params, macs=macs, latency_ms=row.latency_ms, latency_spread_ms=row.latency_spread_ms,
                    device=device,
                    settings={**_coefficient_fields(config.coefficients), "family": config.family,
                              "phi": member.phi, "depth": member.depth, "width": member.width,
                              "drop_rate": member.drop_rate, "base": base.name, "base_resolution": base_resolution})
        rows.append(row)
        if on_member is not None:
            on_member(row)
    return rows


def show_scaled(base_ref: str, phi: int, coefficients: Coefficients | None, family: str | None,
                resolution: int | None = None, storage: str | None = None,
                base_study: str | None = None) -> tuple[Architecture, int, int]:
    """One member of a family with its params and MACs at its resolution; nothing is written."""
    if phi < 0:
        raise UsageError(f"--phi must be >= 0, got {phi}")
    base = resolve_architecture(base_ref, storage, base_study)
    base_resolution = _base_resolution(base, resolution)
    (member,) = family_members(coefficients, family, (phi,), base_resolution)
    arch = scaled_architecture(base, member, coefficients, family, base_resolution)
    return (arch, *network_size(arch.genotype, member.resolution))

