"""One way for a trial to happen: genotype -> size, latency, accuracy, reward -> stored record.

The search, the hybrid search and the scaling grid run architectures through ``TrialRunner`` (as
NetAdapt refinement and Ray Tune workers are to); what differs is the estimators they hand it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import optuna

from nas.errors import UnbuildableArchitecture
from nas.estimators import AccuracyEstimator, LatencyEstimator
from nas.metrics import count_size
from nas.notes import upload_architecture
from nas.reward import Reward
from nas.study import enqueue_again, fail_reason
from search_spaces import Genotype
from storage import INTERRUPTED, LATENCY_CONSTRAINT, Store, TrialRecord, write_trial


@contextmanager
def _unless_the_database_refuses() -> Iterator[None]:
    """Bookkeeping after Ctrl-C is best effort: the interrupt may have cut a write short and left
    SQLite locked for a moment (a suite run in the background saw "database is locked" once). A trial
    whose reason is not stored is still run again: the resume counts a reasonless FAIL as interrupted."""
    try:
        yield
    except Exception:  # the KeyboardInterrupt being handled is re-raised by the caller
        pass


class _Stopwatch:
    """Seconds per phase of a trial, stored with it (bench/search_overhead.py reads them)."""

    def __init__(self, started: float | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter() if started is None else started

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._mark
        self._mark = now


def _size(genotype: Genotype, resolution: int) -> tuple[int, int]:
    """The network's parameters and MACs, counted on the meta device (nothing is allocated); timm's
    own errors here (often a bare ``AssertionError``) become a reason that says what failed."""
    try:
        return count_size(genotype, resolution)
    except Exception as err:
        detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise UnbuildableArchitecture(f"timm cannot build this architecture ({detail})") from err


@dataclass(frozen=True)
class TrialRunner:
    """Runs one architecture as one Optuna trial and stores it under the storage contract.

    ``pareto``: the trial returns (accuracy, latency) with a latency constraint (feasible when
    <= 0), else the reward. With ``store`` the architecture file becomes the trial's artifact.
    ``requeue``: an interrupted trial's architecture is queued to run first on resume.
    """

    latency: LatencyEstimator
    accuracy: AccuracyEstimator
    reward: Reward
    resolution: int  # MACs are counted at the device's input size
    pareto: bool = False
    store: Store | None = None
    requeue: bool = True

    def __call__(self, trial: optuna.Trial, genotype: Genotype, extra: TrialRecord | None = None,
                 started: float | None = None) -> float | tuple[float, float]:
        """``extra``: more contract fields to store (a grid point's coefficients); ``started``: when
        the caller began choosing the genotype (``time.perf_counter``), timed as ``sample_s``."""
        watch = _Stopwatch(started)
        watch.lap("sample_s")
        interrupted = False
        try:
            params, macs = _size(genotype, self.resolution)
            watch.lap("count_s")
            latency = self.latency.latency(genotype)
            watch.lap("latency_s")
            record = TrialRecord(
                arch_def=genotype.arch_def, network=genotype.network(), arch_key=genotype.key, params=params, macs=macs,
                latency_ms=latency.latency_ms, latency_spread_ms=latency.spread_ms, load_avg=latency.load_avg,
                latency_source=latency.source, latency_predicted_ms=latency.predicted_ms, device=self.latency.device,
                estimator=self.accuracy.name)
            write_trial(trial, **record.to_attrs(), **(extra.to_attrs() if extra else {}))
            if self.pareto:
                trial.set_constraint(LATENCY_CONSTRAINT, latency.latency_ms - self.reward.target_ms)
            if self.store is not None:
                upload_architecture(trial, self.store)
            watch.lap("store_s")

            def report(step: int, accuracy: float) -> None:
                watch.lap("accuracy_s")
                write_trial(trial, accuracy=accuracy)
                if not self.pareto:
                    trial.report(self.reward(accuracy, latency.latency_ms), step)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after step {step + 1} at accuracy {accuracy:.4f}")
                watch.lap("store_s")

            accuracy = self.accuracy.accuracy(genotype, report)
            write_trial(trial, accuracy=accuracy)
            watch.lap("accuracy_s")
        except KeyboardInterrupt:
            interrupted = True
        except Exception as err:
            failure = {} if isinstance(err, optuna.TrialPruned) else {"fail_reason": fail_reason(err)}
            write_trial(trial, timings_s=watch.seconds, **failure)
            raise
        if interrupted:
            self._interrupted(trial, watch)
        write_trial(trial, timings_s=watch.seconds)
        if self.pareto:
            return accuracy, latency.latency_ms
        return self.reward(accuracy, latency.latency_ms)

    def _interrupted(self, trial: optuna.Trial, watch: _Stopwatch) -> NoReturn:
        """Store why the trial stopped, then interrupt on. Runs after the ``except`` block has let
        go of the interrupt's traceback: when Ctrl-C lands inside a SQLite read, the frames it keeps
        hold that read's statement, and with it a lock on the file that made every write here (and
        Optuna's own FAIL write after it) wait out the 60 s busy timeout (a suite run hung >120 s)."""
        gc.collect()  # frames in reference cycles with the traceback, and the statements they hold
        with _unless_the_database_refuses():  # the interrupt, not a write it broke, is what the user sees
            write_trial(trial, fail_reason=INTERRUPTED, timings_s=watch.seconds)
            if self.requeue:
                enqueue_again(trial)
        raise KeyboardInterrupt
