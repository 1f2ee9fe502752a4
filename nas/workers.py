"""`nas search --workers N`: N processes on one study, the way Optuna runs in parallel.

Each worker runs ``study.optimize`` on the shared RDB storage and the database hands each trial
to exactly one of them: nothing is scheduled or queued here. What this module adds is the order
of things (storage, our tables and the study are made once, before any worker starts: workers
started together on a fresh database race to create Optuna's schema), each worker's share of
the budget (so the study ends with exactly ``--trials``), and a worker's patience with a
database that goes away for a while. ``--runner ray`` hands the trials to Ray Tune instead
(``nas.ray_runner``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from nas.config import SearchConfig
from nas.errors import EXIT_DATABASE, EXIT_INTERRUPTED, NasError, UsageError, WorkerError
from nas.estimators import AccuracyEstimator, LatencyEstimator
from nas.estimators.choose import parse_hybrid
from nas.search import SearchObserver, SearchResult, prepare_search, run_search, search_result
from nas.study import FINISHED, spent_budget
from storage import Store, StorageError

RUNNERS = ("local", "ray")
DATABASE_WAIT_S = 60.0  # a worker waits this long for a lost database, then exits with one line
RESUMES = 5  # and resumes at most this often after the database came back
POLL_S = 1.0  # how often the command looks for trials its workers finished (for the progress bar)
# what a lost connection raises: our storage, Optuna's (it wraps SQLAlchemy's) and SQLAlchemy's own
_LOST = (StorageError, optuna.exceptions.StorageInternalError, OperationalError, InterfaceError)


@dataclass(frozen=True)
class ScaleOut:
    """How a search's trials run: ``workers`` at once, as processes on this machine (``local``) or
    as Ray Tune trials (``ray``, on a local Ray instance or the cluster at ``ray_address``)."""

    workers: int = 1
    runner: str = "local"
    ray_address: str | None = None  # "auto" or "ray://HOST:10001"; None starts Ray on this machine
    ray_cpus: int | None = None  # CPUs of a local Ray instance [default: this machine's]

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise UsageError(f"--runner: unknown {self.runner!r}; choose one of {', '.join(RUNNERS)}")
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if self.ray_address is not None and self.runner != "ray":
            raise UsageError("--ray-address needs --runner ray")

    def check(self, config: SearchConfig, store: Store) -> None:
        """Refuse, before anything is written, what cannot work in parallel."""
        if self.runner == "ray" and self.ray_address is not None and make_url(store.url).get_backend_name() == "sqlite":
            raise UsageError("--ray-address: workers on other machines cannot reach an SQLite file; "
                             "pass --storage postgresql+psycopg://USER@HOST/DB")
        if (self.workers > 1 or self.runner == "ray") and parse_hybrid(config.estimator):
            raise UsageError("--estimator hybrid:PROXY:K runs its two phases in one process; use --workers 1 "
                             "and --runner local")


def search(config: SearchConfig, store: Store, scale: ScaleOut, observer: SearchObserver | None = None, top: int = 3,
           *, accuracy: AccuracyEstimator | None = None, latency: LatencyEstimator | None = None) -> SearchResult:
    """Run (or resume, or join) the search on the engine ``scale`` names."""
    scale.check(config, store)
    if scale.runner == "ray":
        from nas.ray_runner import run_ray_search  # deferred: importing Ray takes seconds

        return run_ray_search(config, store, scale.workers, scale.ray_address, scale.ray_cpus, observer, top,
                              accuracy=accuracy, latency=latency)
    if scale.workers == 1:
        return run_search(config, store, observer, top, accuracy=accuracy, latency=latency)
    return run_workers(config, store, scale.workers, observer, top, accuracy=accuracy, latency=latency)


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process gets (pickled to it): the search, its estimators and its share."""

    config: SearchConfig
    store: Store
    accuracy: AccuracyEstimator
    latency: LatencyEstimator
    share: int | None  # trials this worker runs at most; None: until the timeout
    index: int


def shares(remaining: int | None, workers: int) -> list[int | None]:
    """The budget split evenly: together the workers run exactly ``remaining`` trials (a budget
    checked after each trial would let every other running trial finish past it)."""
    if remaining is None:
        return [None] * workers
    return [remaining // workers + (i < remaining % workers) for i in range(workers)]


def run_workers(config: SearchConfig, store: Store, workers: int, observer: SearchObserver | None = None,
                top: int = 3, *, accuracy: AccuracyEstimator | None = None,
                latency: LatencyEstimator | None = None) -> SearchResult:
    """``workers`` processes on one study: made once here, then each worker runs its share of the
    budget; the progress bar hears of each finished trial. A worker that fails says why in one
    line and this raises once all have stopped (every finished trial is stored)."""
    ScaleOut(workers).check(config, store)
    start = time.perf_counter()
    study, accuracy, latency = prepare_search(config, store, accuracy=accuracy, latency=latency)
    with store.session():  # our own tables, made once here rather than by every worker at once
        pass
    finished = {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)}
    finished_before = len(finished)
    remaining = None if config.trials is None else max(0, config.trials - spent_budget(study))
    if observer is not None:
        observer.announce(f"{workers} worker processes on study {study.study_name!r} in {store}")
        observer.started(study, remaining, config.timeout_s)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked database connection
    processes = [context.Process(target=work, args=(WorkerJob(config, store, accuracy, latency, share, i),),
                                 name=f"nas-worker-{i}")
                 for i, share in enumerate(shares(remaining, workers)) if share != 0]
    for process in processes:
        process.start()
    try:
        while running := [p.sentinel for p in processes if p.is_alive()]:
            multiprocessing.connection.wait(running, timeout=POLL_S)
            _tell_observer(study, observer, finished)
    except KeyboardInterrupt:  # the workers got the same Ctrl-C: each marks its trial interrupted and queues it
        for process in processes:
            process.join(30)
        raise
    _tell_observer(study, observer, finished)
    failed = [(i, p.exitcode) for i, p in enumerate(processes) if p.exitcode != 0]
    if failed:
        _raise_failed(failed, len(processes))
    ran = len(study.get_trials(deepcopy=False, states=FINISHED)) - finished_before
    return search_result(config, store, study, latency, top, ran, start)


def _tell_observer(study: optuna.Study, observer: SearchObserver | None, seen: set[int]) -> None:
    if observer is None:
        return
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        if trial.number not in seen:
            seen.add(trial.number)
            observer.trial_finished(study, trial)


def _raise_failed(failed: list[tuple[int, int | None]], workers: int) -> None:
    index, code = failed[0]
    message = (f"{len(failed)} of {workers} workers stopped with an error (worker {index} exited {code}, its reason "
               "is above); every finished trial is stored: run the same command to resume")
    faults = {exit_code: fault for fault, exit_code in EXIT_DATABASE.items() if fault != "usage"}
    if code in faults:
        raise StorageError(message, faults[code])
    raise WorkerError(message)


def work(job: WorkerJob) -> None:
    """One worker process: its share of the search, resumed after a database outage; a reason in
    one line and a non-zero exit when it cannot go on. It stops as Ctrl-C stops it when the command
    that started it dies (``kill -9``), rather than searching on unseen."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        interrupt_when_orphaned()  # inside: an interrupt from it may land at once
        for _ in range(RESUMES + 1):
            try:
                run_search(job.config, job.store, top=0, accuracy=job.accuracy, latency=job.latency, share=job.share)
                return
            except _LOST as err:
                if getattr(err, "fault", "unreachable") != "unreachable":
                    raise
                wait_for_database(job.store, err)
        raise StorageError(f"the database {job.store} kept failing after {RESUMES} resumes", "unreachable")
    except (NasError, StorageError) as err:
        print(f"error: worker {job.index}: {err}", file=sys.stderr)
        sys.exit(EXIT_DATABASE.get(getattr(err, "fault", "usage"), EXIT_DATABASE["usage"]))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


def interrupt_when_orphaned() -> None:
    """Interrupt this process (Ctrl-C's path: the running trial is marked interrupted and queued
    again) once the process that started it is gone. A worker orphaned by ``kill -9`` of its
    command would otherwise run its whole share of the budget, and beside the same command run
    again to resume."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable once the parent has exited
        os.kill(os.getpid(), signal.SIGINT)

    # a command started in the background (``nas search ... &``) ignores SIGINT, and its workers inherit that
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=watch, name="nas-orphan-watch", daemon=True).start()


def wait_for_database(store: Store, lost: BaseException) -> None:
    """Back off until the database answers again; after ``DATABASE_WAIT_S`` give up in one line."""
    deadline = time.monotonic() + DATABASE_WAIT_S
    delay = 1.0
    while True:
        try:
            store.check()
            return
        except StorageError as err:
            if time.monotonic() + delay > deadline:
                raise StorageError(f"lost the database {store} for over {DATABASE_WAIT_S:.0f} s ({err}); every "
                                   "finished trial is stored: run the same command to resume", "unreachable") from lost
        time.sleep(delay)
        delay = min(2 * delay, 10.0)
