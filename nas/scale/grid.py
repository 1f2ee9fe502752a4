"""The compound-scaling grid at phi = 1 as a resumable Optuna study.

The grid scales the base at phi = 1 with every feasible (alpha, beta, gamma); each point is one
trial run by the ``TrialRunner`` (latency measured at the point's resolution, proxy training at
a resolution grown by gamma) and stored under the storage contract plus the point's
coefficients. Optuna's ``GridSampler`` hands out the points, so the study reads like any other
in optuna-dashboard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from nas.architecture import Architecture
from nas.data import BUILTIN, load_proxy_data
from nas.errors import UsageError
from nas.estimators import AccuracyEstimator, LatencyEstimator
from nas.estimators.latency import Measured
from nas.estimators.training import ProxyTraining
from nas.latency import LatencySettings, device_fingerprint, measure_network
from nas.proxy import ProxySettings
from nas.metrics import count_size
from nas.results import resolve_architecture
from nas.reward import Reward
from nas.runner import TrialRunner
from nas.scale.common import base_resolution as checked_resolution
from nas.study import StudySpec, counts_against_budget, open_study
from scaling import Coefficients, grid_points, scale, tolerance_needed
from storage import REWARD_METRICS, Store, StudyRecord, TrialRecord
from storage.contract import GRID_MUST_MATCH, GRID_TARGET

GRID_PHI = 1  # EfficientNet searches alpha, beta, gamma on the network twice the base's FLOPs
PARAM = "point"  # the grid's one Optuna parameter: "alpha,beta,gamma" (the feasible set is no product)
TARGET_FACTOR = 2.0  # default latency target: the base's latency x 2, as phi = 1 doubles the FLOPs
SPACE = "scale-grid"  # the ``space`` of every grid study


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
    proxy: ProxySettings = field(default_factory=lambda: ProxySettings(epochs=4))  # its resolution grows by gamma per point
    latency: LatencySettings = field(default_factory=LatencySettings)  # threads and runs; resolution per point
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
    params, macs = count_size(genotype, member.resolution)
    return GridPoint(coefficients.label(), coefficients.alpha, coefficients.beta, coefficients.gamma, member.depth,
                     member.width, member.resolution, genotype.depth, genotype.stem_size, genotype.num_features,
                     params, macs)


def plan_grid(config: GridConfig, store: Store) -> tuple[Architecture, int, list[GridPoint]]:
    """The base, its resolution and every grid point's scaled shape; nothing trains (``--dry-run``)."""
    base = resolve_architecture(config.base, store, config.base_study)
    base_resolution = checked_resolution(base, config.resolution)
    return base, base_resolution, [_point_shape(base, c, base_resolution) for c in config.points]


def _study_spec(config: GridConfig, name: str, base: Architecture, base_resolution: int, device: dict,
                dataset: str) -> StudySpec:
    settings = StudyRecord(space=SPACE, base=base.name, base_arch=base.genotype.to_dict(), base_resolution=base_resolution,
                           grid={"step": config.step, "tolerance": config.tolerance, "max": config.max_value},
                           dataset=dataset, device=device, proxy=asdict(config.proxy), reward=config.reward,
                           reward_weight=config.reward_weight, target_latency_ms=config.target_latency_ms)
    must_match = GRID_MUST_MATCH + (GRID_TARGET if config.target_latency_ms is not None else ())
    return StudySpec(name, ("maximize",), REWARD_METRICS, settings, must_match, "scaling grid", "--grid-study")


def _point_of(trial: FrozenTrial) -> str | None:
    return trial.params.get(PARAM)


def queue_unfinished(study: optuna.Study, labels: list[str]) -> int:
    """Queue again each point an interrupted run left unfinished; returns the points still to run.

    ``GridSampler`` counts a failed trial as visited and never hands its point out again. The
    copy keeps the failed trial's ``grid_id`` (as Optuna's heartbeat retry does): GridSampler
    reads it after every trial, and ``enqueue_trial`` would leave it out.
    """
    trials = study.get_trials(deepcopy=False)
    done = {_point_of(t) for t in trials if counts_against_budget(t)}
    queued = {_point_of(t) for t in trials if t.state == TrialState.WAITING}
    failed = {_point_of(t): t for t in trials if t.state == TrialState.FAIL and "grid_id" in t.system_attrs}
    for label in labels:
        if label in failed and label not in done | queued:
            trial = failed[label]
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
                system_attrs={key: trial.system_attrs[key] for key in ("grid_id", "search_space")}))
    return sum(label not in done for label in labels)


EstimatorFactory = Callable[[LatencySettings, ProxySettings], tuple[LatencyEstimator, AccuracyEstimator]]


def point_estimators(config: GridConfig) -> EstimatorFactory:
    """Latency measured at the point's resolution; accuracy by proxy training at the point's."""
    return lambda latency, proxy: (Measured(latency), ProxyTraining(load_proxy_data(config.data, proxy.resolution), proxy))


def _grid_objective(config: GridConfig, base: Architecture, base_resolution: int, reward: Reward,
                    labels: dict[str, Coefficients], estimators: EstimatorFactory) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        coefficients = labels[trial.suggest_categorical(PARAM, list(labels))]
        member = coefficients.at(GRID_PHI, base_resolution)
        latency = replace(config.latency, resolution=member.resolution)
        # the proxy images grow with gamma too (to the nearest pixel: rounding 16 px to a
        # multiple of 8 would erase every gamma below 1.25)
        proxy = replace(config.proxy, resolution=round(config.proxy.resolution * coefficients.gamma))
        runner = TrialRunner(*estimators(latency, proxy), reward, member.resolution, requeue=False)
        point = TrialRecord(**asdict(coefficients), resolution=member.resolution, depth=member.depth,
                            width=member.width, proxy_resolution=proxy.resolution)
        return runner(trial, scale(base.genotype, member), point, started)

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
        record = TrialRecord.from_trial(trial)
        points.append(replace(
            shape, state=record.state, trial=record.number, latency_ms=record.latency_ms,
            accuracy=record.accuracy if trial.state == TrialState.COMPLETE else None,  # not a failed run's last epoch
            latency_spread_ms=record.latency_spread_ms,
            reward=record.reward if trial.state == TrialState.COMPLETE else None, fail_reason=record.fail_reason))
    return points


def run_grid(config: GridConfig, store: Store, observer: GridObserver | None = None, plot_path: Path | None = None,
             estimators: EstimatorFactory | None = None) -> GridResult:
    """Run (or resume) the grid until every point has a finished trial, then report and plot.
    ``estimators`` gives each point's latency and accuracy estimators (default: ``point_estimators``)."""
    start = time.perf_counter()
    data = load_proxy_data(config.data, config.proxy.resolution)  # a bad --data fails before anything is written
    base, base_resolution, shapes = plan_grid(config, store)
    labels = {c.label(): c for c in config.points}
    base_latency = replace(config.latency, resolution=base_resolution)
    name = config.study or "scale-" + base.name.replace("/", "-")

    def measure_target(settings: StudyRecord) -> StudyRecord:
        if settings.target_latency_ms is not None:
            return settings
        measured = measure_network(base.genotype, base_latency).latency_ms
        return replace(settings, base_latency_ms=measured, target_latency_ms=TARGET_FACTOR * measured)

    spec = _study_spec(config, name, base, base_resolution, device_fingerprint(base_latency), data.name)
    study, _ = open_study(store, spec, lambda _offset: optuna.samplers.GridSampler({PARAM: list(labels)}, seed=0),
                          optuna.pruners.NopPruner(), on_create=measure_target)
    reward = Reward(config.reward, StudyRecord.from_study(study).target_latency_ms, config.reward_weight)
    finished = (TrialState.COMPLETE, TrialState.FAIL)
    finished_before = len(study.get_trials(deepcopy=False, states=finished))
    remaining = queue_unfinished(study, list(labels))
    if observer is not None:
        observer.started(name, len(labels), len(labels) - remaining)
    callbacks = [lambda _study, trial: observer.trial_finished(trial)] if observer is not None else []
    objective = _grid_objective(config, base, base_resolution, reward, labels, estimators or point_estimators(config))
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
        plot = write_grid_plot(points, plot_path or default_plot_path(store, name), best_accuracy, best_reward,
                               f"{name}: accuracy of {base.name} scaled at phi = 1")
    ran = len(study.get_trials(deepcopy=False, states=finished)) - finished_before
    return GridResult(name, str(store), base.name, base_resolution, reward.target_ms, reward.describe(), ran,
                      time.perf_counter() - start, points, best_accuracy, best_reward, plot)


def default_plot_path(store: Store, study_name: str) -> Path:
    """Next to an SQLite file, else in the working directory."""
    parsed = make_url(store.url)
    folder = Path(parsed.database).parent if parsed.get_backend_name() == "sqlite" and parsed.database else Path()
    return folder / f"{study_name.replace('/', '-').replace(chr(92), '-')}.html"  # a study name never climbs out


def write_grid_plot(points: list[GridPoint], path: Path, best_accuracy: GridPoint | None,
                    best_reward: GridPoint | None, title: str) -> Path:
    """The grid's figure (``dashboards.figures.grid_figure``) as one self-contained HTML file."""
    from dashboards.figures import grid_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    grid_figure(points, best_accuracy, best_reward, title).write_html(path, include_plotlyjs=True)
    return path
