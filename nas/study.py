"""Opening a study, once for every kind of study nas runs (a search, a scaling grid).

Create-or-resume with a settings check (a study resumed with other settings would hold trials
that do not compare), the budget a study has spent, and putting interrupted trials back in the
queue: the search and the grid share these rules, so they live here once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import StudyError
from storage import INTERRUPTED, Store, StudyRecord, TrialRecord

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
HEARTBEAT_S = 30  # a trial whose process died is marked FAIL after 3 missed beats, and queued again


@dataclass(frozen=True)
class StudySpec:
    """What a study is: its name, objectives and settings, and which settings a resume must share."""

    name: str
    directions: tuple[str, ...]  # "maximize" / "minimize" per objective
    metric_names: tuple[str, ...]
    settings: StudyRecord
    must_match: tuple[str, ...]  # fields of ``settings`` a resumed study must have the same
    kind: str  # for messages: "search" or "scaling grid"
    flag: str = "--study"  # the flag that names another study


def open_study(store: Store, spec: StudySpec, sampler: Callable[[int], optuna.samplers.BaseSampler],
               pruner: optuna.pruners.BasePruner,
               on_create: Callable[[StudyRecord], StudyRecord] | None = None) -> tuple[optuna.Study, bool]:
    """Create the study, or load it and check it was made with the same settings; returns
    (study, created). ``sampler(offset)`` gets the number of trials already stored, so a resumed
    study does not replay the samples it tried; ``on_create`` may complete the settings of a
    new study (e.g. a measured latency) before anything is written."""
    storage = store.optuna(HEARTBEAT_S)
    try:
        existing = optuna.load_study(study_name=spec.name, storage=storage)
    except KeyError:
        existing = None
    settings = spec.settings
    if existing is not None:
        stored = StudyRecord.from_study(existing)
        wanted = [optuna.study.StudyDirection[d.upper()] for d in spec.directions]
        if list(existing.directions) != wanted:
            raise StudyError(f"study {spec.name!r} has {len(existing.directions)} objective(s), this {spec.kind} "
                             f"{len(wanted)}; use the same --objective or another {spec.flag}")
        mismatch = settings.mismatch(stored, spec.must_match)
        if mismatch is not None:
            key, old, new = mismatch
            raise StudyError(f"study {spec.name!r} was created with {key}={old!r}, this {spec.kind} has {new!r}; "
                             f"use the same settings or another {spec.flag}")
    elif on_create is not None:  # before the study exists: an interrupted first run leaves no half-made study
        settings = on_create(settings)
    offset = len(existing.get_trials(deepcopy=False)) if existing else 0
    study = optuna.create_study(study_name=spec.name, storage=storage, directions=list(spec.directions),
                                sampler=sampler(offset), pruner=pruner, load_if_exists=True)
    if existing is None:
        settings.write(study)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.metric_names))
    return study, existing is None


OUT_OF_MEMORY = ("can't allocate memory", "out of memory")  # torch's CPU and CUDA allocators say so


def fail_reason(err: BaseException) -> str:
    """What a FAIL trial stores: why, in one line (an interrupted trial is run again); running out
    of memory is named first, since the allocator's words ("enforce fail at alloc_cpu.cpp") hide it."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED
    reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    if isinstance(err, MemoryError) or any(sign in str(err).lower() for sign in OUT_OF_MEMORY):
        reason = f"out of memory: {reason}"
    return " ".join(reason.splitlines())[:500]


def counts_against_budget(trial: FrozenTrial) -> bool:
    """Finished for a reason of its own: an interrupted or killed trial is run again and does not
    count; one whose architecture failed does, or a failing space would loop forever."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and (TrialRecord.from_trial(trial).fail_reason or INTERRUPTED) != INTERRUPTED


def spent_budget(study: optuna.Study) -> int:
    """Trials that count against ``--trials``."""
    return sum(counts_against_budget(t) for t in study.get_trials(deepcopy=False, states=FINISHED))


def enqueue_again(trial: optuna.Trial) -> None:
    """Queue an interrupted trial's architecture so that the resumed run does it first."""
    trial.study.enqueue_trial(trial.params, user_attrs=TrialRecord.from_attrs(trial.user_attrs).replay_attrs())


def state_counts(study: optuna.Study) -> dict[str, int]:
    """The study's trials by state, states with none left out."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    return {k: v for k, v in counts.items() if v}
