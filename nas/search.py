"""The hardware-aware search: sample, measure latency, proxy-train, score, store; resumable.

Optuna runs the loop (``Study.optimize``): its RDB storage holds every trial, its heartbeat
marks trials of a killed process FAIL, and its samplers and pruners drive the search.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from nas.config import SearchConfig
from nas.data import ProxyData, load_proxy_data
from nas.errors import StudyError, UsageError
from nas.latency import device_fingerprint, measure_latency
from nas.latency_table import LatencyPredictor, MissingEntries, describe, find_predictor
from nas.metrics import count_macs, count_params
from nas.notes import TrialNotes, upload_architecture
from nas.proxy import train_proxy
from nas.results import TrialRecord, rank
from search_spaces import Genotype, build_model, get_space, seed_architecture
from storage import latency as latency_store
from storage import open_optuna_storage, resolve_url

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
INTERRUPTED = "interrupted"
_REPLAY_ATTRS = ("seed_arch", "warm_start")  # what an enqueued trial needs to be run again
HEARTBEAT_S = 30
# settings a resumed study must share with the command, or its trials would not compare
_STUDY_KEYS = ("space", "target_latency_ms", "reward", "reward_weight", "dataset", "device")


class SearchObserver(Protocol):
    """What a front end (the CLI's progress bar) hears from a running search."""

    def started(self, study: optuna.Study, remaining: int | None, timeout_s: float | None) -> None: ...

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None: ...

    def announce(self, message: str) -> None: ...


@dataclass(frozen=True)
class SearchResult:
    study_name: str
    storage_url: str
    ran: int  # trials this call finished
    counts: dict[str, int]  # the study's trials by state
    wall_s: float
    best: list[tuple[float, TrialRecord]] = field(default_factory=list)
    latency_source: str = "measured"  # or "lut": trials predicted from the device's latency table
    checks: list[dict] = field(default_factory=list)  # top trials measured for real at the end (lut)


def make_sampler(config: SearchConfig, offset: int) -> optuna.samplers.BaseSampler:
    # Offsetting the seed by the stored trial count keeps a resumed search from replaying
    # the samples it already tried, while a fresh search stays reproducible.
    seed = config.seed + offset
    if config.sampler_name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler_name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)


def _pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "none" or config.objective == "pareto":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


def _study_attrs(config: SearchConfig, device: dict, dataset: str) -> dict[str, object]:
    return {
        "space": config.space,
        "target_latency_ms": config.target_latency_ms,
        "reward": "pareto" if config.objective == "pareto" else config.reward,
        "reward_weight": config.reward_weight,
        "dataset": dataset,
        "device": device,
        "proxy": asdict(config.proxy),
    }


def open_search_study(config: SearchConfig, storage, device: dict, dataset: str) -> optuna.Study:
    """Create the study, or load it and check it was made with the same settings."""
    attrs = _study_attrs(config, device, dataset)
    directions = ["maximize", "minimize"] if config.objective == "pareto" else ["maximize"]
    try:
        existing = optuna.load_study(study_name=config.study_name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        if list(existing.directions) != [optuna.study.StudyDirection[d.upper()] for d in directions]:
            raise StudyError(f"study {config.study_name!r} has objective "
                             f"{'pareto' if len(existing.directions) == 2 else 'reward'}; "
                             "use the same --objective or another --study")
        for key in _STUDY_KEYS:
            stored = existing.user_attrs.get(key)
            if stored != attrs[key]:
                raise StudyError(f"study {config.study_name!r} was created with {key}={stored!r}, "
                                 f"this search has {attrs[key]!r}; use the same settings or another --study")
    offset = len(existing.get_trials(deepcopy=False)) if existing else 0
    study = optuna.create_study(study_name=config.study_name, storage=storage, directions=directions,
                                sampler=make_sampler(config, offset), pruner=_pruner(config), load_if_exists=True)
    if existing is None:
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        warm_start = get_space(config.space).reference_params()
        if warm_start is not None:
            study.enqueue_trial(warm_start, user_attrs={"warm_start": config.space})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["accuracy", "latency_ms"] if config.objective == "pareto" else ["reward"])
    return study


def enqueue_seeds(study: optuna.Study, names: tuple[str, ...]) -> None:
    """Queue the paper networks as starting points, once per study however often resumed."""
    present = {t.user_attrs.get("seed_arch") for t in study.get_trials(deepcopy=False)}
    for name in names:
        if name not in present:
            study.enqueue_trial({}, user_attrs={"seed_arch": name})


class _Stopwatch:
    """Seconds per phase of a trial, stored with it (bench/search_overhead.py reads them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._mark
        self._mark = now


def _report(trial: optuna.Trial, value: float, epoch: int) -> bool:
    """Report an intermediate reward; True when the pruner says stop."""
    trial.report(value, epoch)
    return trial.should_prune()


def spent_budget(study: optuna.Study) -> int:
    """Trials that count against ``--trials``: an interrupted or killed trial does not (it is run
    again); one whose architecture failed does, or a failing space would loop forever."""
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.user_attrs.get("fail_reason", INTERRUPTED) != INTERRUPTED)
        for t in study.get_trials(deepcopy=False, states=FINISHED)
    )


def _enqueue_again(trial: optuna.Trial) -> None:
    """Queue an interrupted trial's architecture so that the resumed search runs it first."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k in _REPLAY_ATTRS}
    trial.study.enqueue_trial(trial.params, user_attrs=attrs)


def make_objective(
    config: SearchConfig, device: dict, data: ProxyData, url: str, predictor: LatencyPredictor | None = None,
    use_table: bool = False,
) -> Callable[[optuna.Trial], float | tuple[float, float]]:
    """The trial: sample, build, latency (predicted from ``predictor`` when ``use_table``, else
    measured; a table's prediction is stored beside a measurement too), proxy-train, score."""
    space = get_space(config.space)
    reward = config.reward_fn
    pareto = config.objective == "pareto"

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        watch = _Stopwatch()
        try:
            seed_name = trial.user_attrs.get("seed_arch")
            genotype: Genotype = seed_architecture(seed_name) if seed_name else space.sample(trial)
            watch.lap("sample_s")
            model = build_model(genotype)
            watch.lap("build_s")
            params, macs = count_params(model), count_macs(genotype, config.latency.resolution)
            watch.lap("count_s")
            predicted = _predict(predictor, genotype)
            if use_table and predicted is not None:
                latency = {"latency_ms": predicted, "latency_spread_ms": None, "load_avg": None, "latency_source": "lut"}
            else:
                measured = measure_latency(model, config.latency)
                latency = {"latency_ms": measured.latency_ms, "latency_spread_ms": measured.spread_ms,
                           "load_avg": measured.load_avg, "latency_source": "measured"}
            latency_ms = latency["latency_ms"]
            del model
            watch.lap("latency_s")
            for key, value in {
                "arch_def": genotype.arch_def, "network": genotype.network(), "arch_key": genotype.key,
                "params": params, "macs": macs, **latency, "latency_predicted_ms": predicted, "device": device,
            }.items():
                trial.set_user_attr(key, value)
            if pareto:  # feasible when <= 0: Optuna's samplers and the dashboard read it
                trial.set_constraint("latency_ms", latency_ms - config.target_latency_ms)
            upload_architecture(trial, url)
            watch.lap("store_s")

            def on_epoch(epoch: int, accuracy: float) -> None:
                watch.lap("train_s")
                trial.set_user_attr("accuracy", accuracy)
                prune = not pareto and _report(trial, reward(accuracy, latency_ms), epoch)
                watch.lap("store_s")
                if prune:
                    raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} at accuracy {accuracy:.4f}")

            accuracy = train_proxy(genotype, data, config.proxy, on_epoch)
        except (Exception, KeyboardInterrupt) as err:
            if isinstance(err, KeyboardInterrupt):
                trial.set_user_attr("fail_reason", INTERRUPTED)
                _enqueue_again(trial)
            elif not isinstance(err, optuna.TrialPruned):
                trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}"[:500])
            raise
        finally:
            trial.set_user_attr("timings_s", watch.seconds)
        if pareto:
            return accuracy, latency_ms
        return reward(accuracy, latency_ms)

    return objective


def _predict(predictor: LatencyPredictor | None, genotype: Genotype) -> float | None:
    """The table's prediction, or None without a table or for a network outside it (a seed)."""
    if predictor is None:
        return None
    try:
        return predictor(genotype)
    except MissingEntries:
        return None


def _latency_table(config: SearchConfig, url: str) -> tuple[LatencyPredictor | None, bool]:
    """The device's calibrated table for the space, and whether trials take their latency from it."""
    predictor = find_predictor(url, config.latency, config.space)
    if config.latency_mode == "lut" and predictor is None:
        raise UsageError(f"--latency lut: no latency table calibrated for space {config.space!r} on this device "
                         f"({describe(device_fingerprint(config.latency))}); run `nas latency build --space {config.space}`")
    return predictor, predictor is not None and config.latency_mode != "measure"


def check_top(study: optuna.Study, url: str, config: SearchConfig, top: int) -> list[dict]:
    """Measure the best ``top`` table-predicted trials for real and store both numbers
    (``nas_trial_latency``): the table ranks, the device has the last word."""
    checked = latency_store.trial_latencies(url, study.study_name)
    device = device_fingerprint(config.latency)
    results = []
    for _, record in rank(study, config.reward_fn, top):
        if record.number not in checked and record.latency_source == "lut":
            measured = measure_latency(build_model(record.genotype), config.latency)
            row = {"latency_ms": measured.latency_ms, "spread_ms": measured.spread_ms, "load_avg": measured.load_avg,
                   "predicted_ms": record.latency_predicted_ms, "device": device}
            latency_store.add_trial_latency(url, study=study.study_name, trial=record.number, **row)
            checked[record.number] = row
        if record.number in checked:
            row = checked[record.number]
            results.append({"trial": record.number, "predicted_ms": row["predicted_ms"], "measured_ms": row["latency_ms"],
                            "spread_ms": row["spread_ms"], "error_pct": 100 * (row["predicted_ms"] / row["latency_ms"] - 1)})
    return results


def run_search(config: SearchConfig, observer: SearchObserver | None = None, top: int = 3) -> SearchResult:
    """Run (or resume) the search ``config`` describes until its budget is spent."""
    start = time.perf_counter()
    data = load_proxy_data(config.data, config.proxy.resolution)  # bad --data fails before any write
    url = resolve_url(config.storage)
    storage = open_optuna_storage(url, heartbeat_interval=HEARTBEAT_S)
    device = device_fingerprint(config.latency)
    predictor, use_table = _latency_table(config, url)
    study = open_search_study(config, storage, device, data.name)
    enqueue_seeds(study, config.seed_archs)
    if observer is not None:
        observer.announce(f"latency: predicted from this device's table (calibrated on {predictor.space!r}); the best "
                          f"{top} are measured for real at the end" if use_table else
                          "latency: measured for every trial" + (" (the table's prediction is stored beside it)"
                                                                 if predictor else ""))
    finished_before = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = None if config.trials is None else max(0, config.trials - spent_budget(study))
    if observer is not None:
        observer.started(study, remaining, config.timeout_s)
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = []
    if config.trials is not None:
        # other workers on the same study stop together once the budget is met
        callbacks.append(MaxTrialsCallback(config.trials, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    if observer is not None:
        callbacks.append(observer.trial_finished)
    callbacks.append(TrialNotes())  # each trial's optuna-dashboard note
    if remaining != 0:
        study.optimize(make_objective(config, device, data, url, predictor, use_table), n_trials=remaining, timeout=config.timeout_s,
                       catch=(Exception,), callbacks=callbacks)
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    ran = counts["COMPLETE"] + counts["PRUNED"] + counts["FAIL"] - finished_before
    checks = check_top(study, url, config, top) if use_table else []
    best = rank(study, config.reward_fn, top, latency_store.trial_latencies(url, study.study_name))
    return SearchResult(study.study_name, url, ran, {k: v for k, v in counts.items() if v}, time.perf_counter() - start, best,
                        "lut" if use_table else "measured", checks)
