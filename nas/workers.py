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

import atexit
import gc
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
from nas.interrupts import REPEAT_S, Interrupts
from nas.search import SearchObserver, SearchResult, prepare_search, run_search, search_result
from nas.study import FINISHED, spent_budget
from storage import Store, StorageError

RUNNERS = ("local", "ray")
DATABASE_WAIT_S = 60.0  # a worker waits this long for a lost database, then exits with one line
RESUMES = 5  # and resumes at most this often after the database came back
POLL_S = 1.0  # how often the command looks for trials its workers finished (for the progress bar)
STOP_WAIT_S = 30.0  # an interrupted worker gets this long to store its trial, then it is killed
# what a lost connection raises: our storage, Optuna's (it wraps SQLAlchemy's) and SQLAlchemy's own
_LOST = (StorageError, optuna.exceptions.StorageInternalError, OperationalError, InterfaceError)


@dataclass(frozen=True)
class ScaleOut:
    """How a search's trials run: ``workers`` at once, as processes on this machine (``local``) or
    as Ray Tune trials (``ray``, on a local Ray instance or the cluster at ``ray_address``).

    ``workers=None`` (``--workers auto``, the default) is one trial a core: a trial trains on one
    thread, so a single worker leaves every other core idle (Ray Tune's default, one CPU a trial, does
    the same on a cluster). A latency measurement still has the machine to itself (``nas.turns``).
    """

    workers: int | None = None
    runner: str = "local"
    ray_address: str | None = None  # "auto" or "ray://HOST:10001"; None starts Ray on this machine
    ray_cpus: int | None = None  # CPUs of a local Ray instance [default: this machine's]

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise UsageError(f"--runner: unknown {self.runner!r}; choose one of {', '.join(RUNNERS)}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if self.ray_address is not None and self.runner != "ray":
            raise UsageError("--ray-address needs --runner ray")

    def check(self, config: SearchConfig, store: Store) -> None:
        """Refuse, before anything is written, what cannot work in parallel."""
        if self.runner == "ray" and self.ray_address is not None and make_url(store.url).get_backend_name() == "sqlite":
            raise UsageError("--ray-address: workers on other machines cannot reach an SQLite file; "
                             "pass --storage postgresql+psycopg://USER@HOST/DB")
        if parse_hybrid(config.estimator) and (self.runner == "ray" or self.trials_at_once(config) > 1):
            raise UsageError("--estimator hybrid:PROXY:K runs its two phases in one process; use --workers 1 "
                             "and --runner local")

    def trials_at_once(self, config: SearchConfig) -> int | None:
        """``workers``, or for ``auto`` one a core this process may use (one for ``hybrid``, which
        runs in one process); ``None`` on Ray: as many as the cluster has CPUs."""
        if self.workers is not None:
            return self.workers
        if self.runner == "ray":
            return None
        return 1 if parse_hybrid(config.estimator) else usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (``taskset``, a container's CPU set); all of them where the
    system cannot tell (macOS)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_workers(text: str) -> int | None:
    """``--workers``: a whole number, or ``auto`` (``None``)."""
    if text == "auto":
        return None
    if not text.isdecimal():
        raise UsageError(f"--workers: expected a whole number or auto, got {text!r}")
    return int(text)


def search(config: SearchConfig, store: Store, scale: ScaleOut, observer: SearchObserver | None = None, top: int = 3,
           *, accuracy: AccuracyEstimator | None = None, latency: LatencyEstimator | None = None) -> SearchResult:
    """Run (or resume, or join) the search on the engine ``scale`` names."""
    scale.check(config, store)
    workers = scale.trials_at_once(config)
    if scale.runner == "ray":
        from nas.ray_runner import run_ray_search  # deferred: importing Ray takes seconds

        return run_ray_search(config, store, workers, scale.ray_address, scale.ray_cpus, observer, top,
                              accuracy=accuracy, latency=latency)
    if workers == 1:
        return run_search(config, store, observer, top, accuracy=accuracy, latency=latency)
    return run_workers(config, store, workers, observer, top, accuracy=accuracy, latency=latency)


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
    try:
        for process in processes:
            process.start()
        while running := [p.sentinel for p in processes if p.is_alive()]:
            multiprocessing.connection.wait(running, timeout=POLL_S)
            _tell_observer(study, observer, finished)
    except KeyboardInterrupt:  # Ctrl-C reached the workers too; SIGTERM, or Ctrl-C in the background, only this process
        stop_workers(processes)
        raise
    _tell_observer(study, observer, finished)
    failed = [(i, p.exitcode) for i, p in enumerate(processes) if p.exitcode != 0]
    if failed:
        _raise_failed(failed, len(processes))
    ran = len(study.get_trials(deepcopy=False, states=FINISHED)) - finished_before
    return search_result(config, store, study, latency, top, ran, start)


def stop_workers(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Interrupt the workers still running and wait while they store their trials, repeating the
    interrupt every ``REPEAT_S`` (a worker ignores a repeat sooner, so a terminal's Ctrl-C followed
    by this one interrupts it once); one still running after ``STOP_WAIT_S`` is killed (the
    heartbeat reaps its trial). Python joins a command's worker processes before it exits, so
    without this a SIGTERM left the command waiting for its workers to run the whole budget."""
    started = [p for p in processes if p.pid is not None]
    deadline = time.monotonic() + STOP_WAIT_S
    while (alive := [p for p in started if p.is_alive()]) and time.monotonic() < deadline:
        for process in alive:
            process.terminate()
        repeat_at = min(time.monotonic() + REPEAT_S, deadline)
        for process in alive:
            process.join(max(0.0, repeat_at - time.monotonic()))
    for process in started:
        if process.is_alive():
            process.kill()
            process.join()


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
    one line and a non-zero exit when it cannot go on; interrupted (``take_interrupts``), it stores
    its trial as Ctrl-C does and exits 130."""
    atexit.register(gc.freeze)  # as ``nas.cli.main`` does: its command waits for this process's exit
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        take_interrupts()  # inside: an interrupt may land at once
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


def take_interrupts() -> None:
    """In a worker process: SIGINT and SIGTERM interrupt it as they do a command (``nas.interrupts``;
    its command sends SIGTERM when it is interrupted itself; a command started in the background
    ignores SIGINT, and its workers inherited that), and so does the end of the command that
    started it (``kill -9``), repeated until it stops, then a kill after ``STOP_WAIT_S``: an
    orphaned worker would run its whole share of the budget unseen, beside the same command run
    again to resume."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not a worker process (``work`` called in-process): leave its signals alone
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable once the parent has exited
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(REPEAT_S)
        os.kill(os.getpid(), signal.SIGKILL)  # the heartbeat reaps its trial

    Interrupts().install()
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
