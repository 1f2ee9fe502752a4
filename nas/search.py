"""The hardware-aware search: sample, estimate latency and accuracy, score, store; resumable.

Optuna runs the loop (``Study.optimize``): its RDB storage holds every trial, its heartbeat
marks trials of a killed process FAIL, and its samplers and pruners drive the search. Each
trial is one call of the ``TrialRunner``; the estimators are chosen once, here.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from nas.config import SearchConfig
from nas.errors import UsageError
from nas.estimators import AccuracyEstimator, LatencyEstimator
from nas.estimators.choose import TRAINED, make_estimator, parse_hybrid
from nas.hybrid import Screen, run_hybrid
from nas.estimators.latency import Table, choose_latency
from nas.latency import device_fingerprint, measure_network
from nas.notes import TrialNotes
from nas.results import Front, is_pareto, pareto_front, rank, record_genotype
from nas.runner import TrialRunner
from nas.study import FINISHED, HEARTBEAT_S, StudySpec, open_study, spent_budget, state_counts
from search_spaces import get_space, seed_architecture
from storage import PARETO_METRICS, REWARD_METRICS, Store, StudyRecord, TrialRecord
from storage.contract import SEARCH_MUST_MATCH
from storage import latency as latency_store



class SearchObserver(Protocol):
    """What a front end (the CLI's progress bar) hears from a running search."""

    def started(self, study: optuna.Study, remaining: int | None, timeout_s: float | None) -> None: ...

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None: ...

    def announce(self, message: str) -> None: ...


@dataclass(frozen=True)
class LatencyCheck:
    """A table-predicted trial measured for real after the search."""

    trial: int
    predicted_ms: float | None
    measured_ms: float
    spread_ms: float

    @property
    def error_pct(self) -> float | None:
        return None if self.predicted_ms is None else 100 * (self.predicted_ms / self.measured_ms - 1)


@dataclass(frozen=True)
class SearchResult:
    study_name: str
    storage_url: str  # without its password
    ran: int  # trials this call finished
    counts: dict[str, int]  # the study's trials by state
    wall_s: float
    best: list[tuple[float, TrialRecord]] = field(default_factory=list)
    latency_source: str = "measured"  # or "lut": trials predicted from the device's latency table
    checks: list[LatencyCheck] = field(default_factory=list)  # top trials measured for real at the end (lut)
    front: Front | None = None  # a Pareto study's answer: its non-dominated trials, fastest first


def make_sampler(config: SearchConfig, offset: int) -> optuna.samplers.BaseSampler:
    # Offsetting the seed by the stored trial count keeps a resumed search from replaying
    # the samples it already tried, while a fresh search stays reproducible.
    seed = config.seed + offset
    if config.sampler_name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler_name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    """Median stops a trial below the median of others at the same epoch; successive halving
    (``sha``) and Hyperband keep the best 1/3 at each rung, so most trials stop after one epoch."""
    if config.pruner == "none" or config.objective == "pareto":
        return optuna.pruners.NopPruner()
    if config.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.proxy.epochs, reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


def study_spec(config: SearchConfig, device: dict, accuracy: AccuracyEstimator) -> StudySpec:
    pareto = config.objective == "pareto"
    settings = StudyRecord(
        space=config.space, target_latency_ms=config.target_latency_ms, reward="pareto" if pareto else config.reward,
        reward_weight=config.reward_weight, dataset=accuracy.settings.get("data") or config.data, device=device,
        proxy=asdict(config.proxy), estimator={**accuracy.settings, "spec": config.estimator})
    return StudySpec(config.study_name, ("maximize", "minimize") if pareto else ("maximize",),
                     PARETO_METRICS if pareto else REWARD_METRICS, settings, SEARCH_MUST_MATCH, "search")


def open_search_study(config: SearchConfig, store: Store, device: dict, accuracy: AccuracyEstimator) -> optuna.Study:
    """Create the study (warm-started with the space's skeleton network), or resume it."""
    study, created = open_study(store, study_spec(config, device, accuracy), lambda offset: make_sampler(config, offset),
                                make_pruner(config))
    if created:
        warm_start = get_space(config.space).reference_params()
        if warm_start is not None:
            study.enqueue_trial(warm_start, user_attrs=TrialRecord(warm_start=config.space).to_attrs())
    return study


def enqueue_seeds(study: optuna.Study, names: tuple[str, ...]) -> None:
    """Queue the paper networks as starting points, once per study however often resumed."""
    present = {TrialRecord.from_trial(t).seed_arch for t in study.get_trials(deepcopy=False)}
    for name in names:
        if name not in present:
            study.enqueue_trial({}, user_attrs=TrialRecord(seed_arch=name).to_attrs())


def make_objective(config: SearchConfig, runner: TrialRunner) -> Callable[[optuna.Trial], float | tuple[float, float]]:
    """Sample a network of the space (or take the queued seed network) and run it."""
    space = get_space(config.space)

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        started = time.perf_counter()
        seed_name = TrialRecord.from_attrs(trial.user_attrs).seed_arch
        genotype = seed_architecture(seed_name) if seed_name else space.sample(trial)
        return runner(trial, genotype, started=started)

    return objective


def check_top(study: optuna.Study, store: Store, config: SearchConfig, top: int) -> list[LatencyCheck]:
    """Measure the best ``top`` table-predicted trials for real and store both numbers
    (``nas_trial_latency``): the table ranks, the device has the last word."""
    checked = latency_store.trial_latencies(store, study.study_name)
    device = device_fingerprint(config.latency)
    results = []
    for _, record in rank(study, config.reward_fn, top):
        if record.number not in checked and record.latency_source == "lut":
            measured = measure_network(record_genotype(record), config.latency)
            latency_store.add_trial_latency(store, study.study_name, record.number, latency_ms=measured.latency_ms,
                                            spread_ms=measured.spread_ms, load_avg=measured.load_avg,
                                            predicted_ms=record.latency_predicted_ms, device=device)
            checked = latency_store.trial_latencies(store, study.study_name)
        if record.number in checked:
            row = checked[record.number]
            results.append(LatencyCheck(record.number, row.predicted_ms, row.latency_ms, row.spread_ms))
    return results


def _announce(observer: SearchObserver, latency: LatencyEstimator, top: int) -> None:
    if isinstance(latency, Table):
        observer.announce(f"latency: predicted from this device's table (calibrated on {latency.predictor.space!r}); "
                          f"the best {top} are measured for real at the end")
    else:
        beside = " (the table's prediction is stored beside it)" if getattr(latency, "predictor", None) else ""
        observer.announce("latency: measured for every trial" + beside)


def run_search(config: SearchConfig, store: Store, observer: SearchObserver | None = None, top: int = 3, *,
               accuracy: AccuracyEstimator | None = None, latency: LatencyEstimator | None = None,
               share: int | None = None) -> SearchResult:
    """Run (or resume) the search ``config`` describes until its budget is spent.

    The estimators come from ``config`` (``--estimator``; the device's table or measurement) unless
    given: a caller may hand in any ``AccuracyEstimator`` / ``LatencyEstimator``. With
    ``hybrid:PROXY:K`` the ``--trials`` candidates are screened by PROXY and the best K trained.
    ``share``: at most this many trials in this process (a worker's part of the budget); ``top=0``
    skips ranking and the final latency checks (a worker leaves them to the command that started it).
    """
    start = time.perf_counter()
    hybrid = parse_hybrid(config.estimator)
    screen = make_estimator(hybrid.screen, config.data, config.proxy.seed) if hybrid else None
    study, accuracy, latency = prepare_search(config, store, accuracy=accuracy, latency=latency)
    if observer is not None:
        _announce(observer, latency, top)
    finished_before = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = None if config.trials is None else max(0, config.trials - spent_budget(study))
    if share is not None:
        remaining = share if remaining is None else min(remaining, share)
    if observer is not None:
        observer.started(study, remaining if not hybrid else None, config.timeout_s)
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [TrialNotes(store.optuna(HEARTBEAT_S))]
    if observer is not None:
        callbacks.append(observer.trial_finished)
    runner = TrialRunner(latency, accuracy, config.reward_fn, config.latency.resolution,
                         pareto=config.objective == "pareto", store=store)

    def optimize(trial_runner: TrialRunner, n_trials: int | None, budget: list) -> None:
        study.optimize(make_objective(config, trial_runner), n_trials=n_trials, timeout=config.timeout_s,
                       catch=(Exception,), callbacks=[*budget, *callbacks])

    if hybrid is not None:  # two budgets (screened, trained): no MaxTrialsCallback
        if screen.name == accuracy.name:
            raise UsageError(f"--estimator {config.estimator}: the screen and the trained estimator are both {screen.name!r}")
        runners = {screen.name: replace(runner, accuracy=Screen(screen)), accuracy.name: runner}
        run_hybrid(study, config.trials, hybrid.k, screen.name, accuracy.name, lambda which, n: optimize(runners[which], n, []))
    elif remaining != 0:  # other workers on the same study stop together once the budget is met
        budget = [MaxTrialsCallback(config.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))] if config.trials else []
        optimize(runner, remaining, budget)
    ran = len(study.get_trials(deepcopy=False, states=FINISHED)) - finished_before
    return search_result(config, store, study, latency, top, ran, start)


def prepare_search(config: SearchConfig, store: Store, *, accuracy: AccuracyEstimator | None = None,
                   latency: LatencyEstimator | None = None) -> tuple[optuna.Study, AccuracyEstimator, LatencyEstimator]:
    """Choose the estimators, create or resume the study, fail a killed worker's trials and queue
    the seed networks: done once, before any worker starts (workers racing to create Optuna's
    schema on a fresh database crash)."""
    if accuracy is None:  # bad --data fails before any write
        spec = TRAINED if parse_hybrid(config.estimator) else config.estimator
        accuracy = make_estimator(spec, config.data, config.proxy.seed, config.proxy, config.space)
    if latency is None:
        latency = choose_latency(store, config.latency, config.space, config.latency_mode)
    study = open_search_study(config, store, latency.device, accuracy)
    with warnings.catch_warnings():  # a killed worker's trial: FAIL and queued again before budgets are counted
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    enqueue_seeds(study, config.seed_archs)
    return study, accuracy, latency


def search_result(config: SearchConfig, store: Store, study: optuna.Study, latency: LatencyEstimator, top: int,
                  ran: int, start: float) -> SearchResult:
    """What a search ends with, however its trials ran: table-predicted leaders measured for real, the best."""
    use_table = isinstance(latency, Table)
    checks = check_top(study, store, config, top) if use_table and top else []
    measured = latency_store.trial_latencies(store, study.study_name)
    best = rank(study, config.reward_fn, top, measured) if top else []
    front = pareto_front(study, config.target_latency_ms, measured) if is_pareto(study) and top else None
    return SearchResult(study.study_name, str(store), ran, state_counts(study), time.perf_counter() - start, best,
                        "lut" if use_table else "measured", checks, front)
