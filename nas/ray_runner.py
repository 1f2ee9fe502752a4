"""`nas search --runner ray`: each trial a Ray Tune trial, Optuna the searcher through Ray's ``OptunaSearch``.

This process (the driver) asks Optuna for every trial through ``OptunaSearch`` on the same study
and storage, so the sampler learns from every trial wherever it ran. A Ray trial gets the Optuna
trial's number, rebuilds that trial from the storage and runs it through the same ``TrialRunner``
as a local search: the stored record is the same, and each epoch is reported to the Optuna trial.
Pruning is Optuna's pruner (``--pruner``) asked inside the Ray trial, as in a local search; Ray's
schedulers (ASHA) are not used, so a study prunes the same way on every runner.

Ray's ``OptunaSearch`` (ray 2.x) needs five changes, made in ``StudySearch``: it would write Tune's
result as the intermediate value of step 1 over the trial's own report; it leaves the Optuna trial
RUNNING when the value is NaN (``Study.tell`` refuses it, and the searcher only logs that); it
tells a trial PRUNED only when its result lacks the metric, which Tune refuses (so a pruned trial
reports ``PRUNED``); it pickles itself into Tune's experiment checkpoint (the study is the state
here); and it knows nothing of our progress bar or trial notes.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import ray
from optuna.trial import FrozenTrial, TrialState
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from sqlalchemy.engine import make_url

from nas.config import SearchConfig
from nas.estimators import AccuracyEstimator, LatencyEstimator
from nas.notes import TrialNotes
from nas.runner import TrialRunner
from nas.search import SearchObserver, SearchResult, make_objective, make_pruner, prepare_search, search_result
from nas.study import FINISHED, spent_budget
from search_spaces import get_space
from storage import INTERRUPTED, PARETO_METRICS, REWARD_METRICS, Store, StoredTrial, TrialRecord, write_trial

NUMBER = "nas_trial_number"  # the key of a Ray trial's config that carries its Optuna trial number
PRUNED = "nas_pruned"  # the key of a Ray trial's result that says the pruner stopped it (Tune needs a result)
LOST = "the Ray trial failed before it stored a reason (its worker or node was lost; see Ray's logs)"


@dataclass(frozen=True)
class RayTrialJob:
    """What every Ray trial runs, sent once through Ray's object store: the search and its runner."""

    config: SearchConfig
    runner: TrialRunner
    store: Store
    study_name: str

    def trial(self, number: int) -> optuna.Trial:
        """The Optuna trial the driver asked for, rebuilt from the storage; its parameters are set
        already, so sampling the space again reads them back (the sampler here never samples)."""
        storage = self.store.optuna()
        study = optuna.load_study(study_name=self.study_name, storage=storage, sampler=optuna.samplers.RandomSampler(),
                                  pruner=make_pruner(self.config))
        study_id = storage.get_study_id_from_name(self.study_name)
        return optuna.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))

    def metrics(self, value: float | tuple[float, float]) -> dict[str, float]:
        if isinstance(value, tuple):
            return dict(zip(PARETO_METRICS, value, strict=True))
        return {REWARD_METRICS[0]: value}

    def pruned(self) -> dict[str, Any]:
        """A pruned trial's result: Tune insists on the metrics, the searcher reads ``PRUNED`` first."""
        return {**self.metrics(math.nan), PRUNED: True}


def run_trial(tune_config: dict[str, Any], job: RayTrialJob) -> None:
    """The Ray Tune trainable: one architecture through the trial runner. A pruned trial says so
    (``StudySearch`` has it told PRUNED); an error propagates (Tune marks it ERROR, Optuna FAIL,
    and the runner has stored its ``fail_reason``)."""
    trial = job.trial(tune_config[NUMBER])
    try:
        value = make_objective(job.config, job.runner)(trial)
    except optuna.TrialPruned:
        tune.report(job.pruned())
        return
    tune.report(job.metrics(value))


class StudySearch(OptunaSearch):
    """``OptunaSearch`` on our study that leaves no trial RUNNING and tells the front end."""

    def __init__(self, study: optuna.Study, store: Store, config: SearchConfig, observer: SearchObserver | None) -> None:
        """``config.timeout_s`` works as in a local search: no trial starts after it, running ones finish
        (Tune's own time budget would stop them, and ``OptunaSearch`` would then tell them PRUNED)."""
        space = get_space(config.space)
        pareto = config.objective == "pareto"

        def define_by_run(trial: optuna.Trial) -> dict[str, int]:
            if TrialRecord.from_attrs(trial.user_attrs).seed_arch is None:  # a seed network has no parameters
                space.sample(trial)
            return {NUMBER: trial.number}

        storage = store.optuna()  # no heartbeat: only ``Study.optimize`` beats, and a Ray trial's end is Tune's to tell
        super().__init__(space=define_by_run, metric=list(PARETO_METRICS) if pareto else REWARD_METRICS[0],
                         mode=["max", "min"] if pareto else "max", sampler=study.sampler,
                         study_name=study.study_name, storage=storage)
        self.target = study
        self.target_storage = storage
        self.numbers: dict[str, int] = {}  # Tune's trial id -> Optuna's trial number
        self.notes = TrialNotes(storage)
        self.observer = observer
        self.deadline = None if config.timeout_s is None else time.monotonic() + config.timeout_s

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return Searcher.FINISHED
        config = super().suggest(trial_id)
        if config is not None:
            self.numbers[trial_id] = config[NUMBER]
        return config

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its searcher for ``Tuner.restore`` (nas resumes from the study instead): the
        progress bar, which holds a lock, stays out."""
        return {**self.__dict__, "observer": None}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study in the database is the searcher's whole state (a resumed search
        reads it back), and a progress bar or a database connection cannot be pickled anyway."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore (see ``save``)."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Ignored: the trial reported each epoch to the Optuna trial itself, and Tune's report of the
        final value would overwrite the intermediate value of step 1."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        number = self.numbers.get(trial_id)
        if number is None:
            return super().on_trial_complete(trial_id, result=result, error=error)
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        values = [result[m] for m in metrics if m in result] if result else []
        if not error and result and result.get(PRUNED):
            result = None  # no value: ``OptunaSearch`` tells it PRUNED, with its last reported value
        elif not error and any(not math.isfinite(v) for v in values):
            self._set_fail_reason(number, f"the trial's value is not a number: {values}")
            result, error = None, True
        elif error:
            self._set_fail_reason(number, LOST)
        super().on_trial_complete(trial_id, result=result, error=error)
        self._finish(number, LOST)

    def finish_unfinished(self) -> None:
        """After Tune stopped (Ctrl-C, the time budget): a trial still RUNNING is FAIL, interrupted,
        and its architecture queued again, as a local search does."""
        for number in self.numbers.values():
            trial = self._trial(number)
            if trial.state == TrialState.RUNNING:
                self.target.enqueue_trial(trial.params, user_attrs=TrialRecord.from_trial(trial).replay_attrs())
                self._finish(number, INTERRUPTED)

    def _trial_id(self, number: int) -> int:
        study_id = self.target_storage.get_study_id_from_name(self.target.study_name)
        return self.target_storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def _trial(self, number: int) -> FrozenTrial:
        return self.target_storage.get_trial(self._trial_id(number))

    def _set_fail_reason(self, number: int, reason: str) -> None:
        """Keeps the reason the trial stored itself (an exception's); a finished trial is left as it is."""
        trial = self._trial(number)
        if trial.state == TrialState.RUNNING and TrialRecord.from_trial(trial).fail_reason is None:
            write_trial(StoredTrial(self.target_storage, self._trial_id(number)), fail_reason=reason)

    def _finish(self, number: int, reason: str) -> None:
        """Whatever happened, the trial ends finished: FAIL with ``reason`` if still RUNNING; then its
        note is written and the front end hears of it."""
        if self._trial(number).state == TrialState.RUNNING:
            self._set_fail_reason(number, reason)
            self.target.tell(number, state=TrialState.FAIL)
        trial = self._trial(number)
        self.notes(self.target, trial)
        if self.observer is not None:
            self.observer.trial_finished(self.target, trial)


def _anywhere(store: Store) -> Store:
    """The store as a Ray worker must open it: a relative SQLite path made absolute (Ray's workers
    run in a folder of their own)."""
    url = make_url(store.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return store
    return replace(store, url=url.set(database=str(Path(url.database).resolve())).render_as_string(hide_password=False))


def start_ray(address: str | None, cpus: int | None) -> bool:
    """Connect to the cluster at ``address``, or start Ray on this machine with its CPUs (or
    ``cpus``) and no dashboard, so nothing listens beyond what Ray itself needs. Returns whether
    this call started Ray (and so should stop it).

    The process's SIGTERM handler is put back afterwards: Ray's driver installs one that prints a
    stack dump and aborts (exit -6), where a terminated search takes Ctrl-C's path (exit 143, the
    running trials queued again)."""
    if ray.is_initialized():
        return False
    on_sigterm = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's classic output, which verbose=0 silences
    quiet = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 # trials run in this command's folder, not Tune's trial folder: relative paths (the
                 # artifacts of a server database, ``nas-artifacts/``) land where the dashboard looks
                 runtime_env={"env_vars": {"RAY_CHDIR_TO_TRIAL_DIR": "0"}})
    if address is not None:
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=cpus or os.cpu_count(), **quiet)
    if on_sigterm is not None:
        signal.signal(signal.SIGTERM, on_sigterm)
    return True


def run_ray_search(config: SearchConfig, store: Store, workers: int | None, address: str | None = None, cpus: int | None = None,
                   observer: SearchObserver | None = None, top: int = 3, *, accuracy: AccuracyEstimator | None = None,
                   latency: LatencyEstimator | None = None) -> SearchResult:
    """Run (or resume) the search as Ray Tune trials, ``workers`` at once with one CPU each (``None``:
    as many as Ray has CPUs, Tune's own limit)."""
    start = time.perf_counter()
    study, accuracy, latency = prepare_search(config, store, accuracy=accuracy, latency=latency)
    finished_before = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = None if config.trials is None else max(0, config.trials - spent_budget(study))
    pareto = config.objective == "pareto"
    if observer is not None:
        at_once = f"{workers} trial(s)" if workers is not None else "a trial a CPU"
        observer.announce(f"Ray Tune: {at_once} at once on {address or 'a local Ray instance'}")
        observer.started(study, remaining, config.timeout_s)
    if remaining != 0:
        anywhere = _anywhere(store)
        runner = TrialRunner(latency, accuracy, config.reward_fn, config.latency.resolution, pareto=pareto, store=anywhere)
        job = RayTrialJob(config, runner, anywhere, study.study_name)
        started = start_ray(address, cpus)
        results = tempfile.mkdtemp(prefix="nas-ray-")  # Tune's own experiment files: our results are in the study
        searcher = StudySearch(study, store, config, observer)
        try:
            tuner = tune.Tuner(
                tune.with_resources(tune.with_parameters(run_trial, job=job), {"cpu": 1}),
                tune_config=tune.TuneConfig(search_alg=searcher, num_samples=remaining if remaining else -1,
                                            max_concurrent_trials=workers, reuse_actors=True),
                run_config=tune.RunConfig(name=study.study_name, storage_path=results, verbose=0))
            tuner.fit()
        finally:
            searcher.finish_unfinished()
            shutil.rmtree(results, ignore_errors=True)
            if started:
                ray.shutdown()
    ran = len(study.get_trials(deepcopy=False, states=FINISHED)) - finished_before
    return search_result(config, store, study, latency, top, ran, start)
