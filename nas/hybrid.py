"""Hybrid search: screen many candidates with a cheap estimator, train only the best K.

Phase 1 runs ``--trials`` candidates through the trial runner with the cheap estimator wrapped in
``Screen``: each is stored with its latency and score and ends PRUNED (screened, not trained), its
reward as the last intermediate value, so TPE learns from every one. Phase 2 queues the K best
screened networks (by that reward, so the latency target counts too) and trains them, each stored
COMPLETE with its screened score in ``scores``. Both phases resume where a kill left them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.estimators import AccuracyEstimator, Report
from nas.study import FINISHED, counts_against_budget
from search_spaces import Genotype
from storage import TrialRecord


class Screen:
    """A cheap estimate that stops the trial once it is known: the candidate is screened, not trained."""

    def __init__(self, estimator: AccuracyEstimator) -> None:
        self.estimator = estimator

    @property
    def name(self) -> str:
        return self.estimator.name

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.estimator.settings

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        value = self.estimator.accuracy(genotype, report)
        report(0, value)
        raise optuna.TrialPruned(f"screened by {self.name}: {value:.4f}, not trained")


def _estimated_by(trial: FrozenTrial, name: str) -> bool:
    return TrialRecord.from_trial(trial).estimator == name


def screened_count(study: optuna.Study, screen: str) -> int:
    return sum(counts_against_budget(t) and _estimated_by(t, screen)
               for t in study.get_trials(deepcopy=False, states=FINISHED))


def queue_best(study: optuna.Study, screen: str, trained: str, k: int) -> int:
    """Queue the best screened networks not trained or queued yet, up to ``k`` trained in all;
    returns how many trainings are still to run."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state in FINISHED and counts_against_budget(t) and _estimated_by(t, trained)]
    # queued for training: carries its screened score (a retried screening trial does not)
    queued = sum(t.state == TrialState.WAITING and TrialRecord.from_trial(t).scores is not None for t in trials)
    left = max(0, k - len(done))
    taken = {TrialRecord.from_trial(t).arch_key for t in trials
             if _estimated_by(t, trained) and t.state in (*FINISHED, TrialState.RUNNING)}
    candidates = sorted((t for t in trials if t.state == TrialState.PRUNED and _estimated_by(t, screen)
                         and t.intermediate_values), key=lambda t: -t.intermediate_values[t.last_step])
    for trial in candidates:
        if queued >= left:
            break
        record = TrialRecord.from_trial(trial)
        if record.arch_key in taken:
            continue
        taken.add(record.arch_key)
        study.enqueue_trial(trial.params, user_attrs=TrialRecord(
            **record.replay_attrs(), scores={screen: record.accuracy}).to_attrs())
        queued += 1
    return left


def run_hybrid(study: optuna.Study, pool: int, k: int, screen: str, trained: str,
               optimize: Callable[[str, int], None]) -> None:
    """Screen until ``pool`` candidates are screened, then train the best ``k``. ``optimize(which,
    n)`` runs ``n`` trials with the screening (``which == screen``) or training runner."""
    screen_left = max(0, pool - screened_count(study, screen))
    if screen_left:
        optimize(screen, screen_left)
    train_left = queue_best(study, screen, trained, k)
    if train_left:
        optimize(trained, train_left)
