"""A study and what our tables hold beside it, read once into columns for drawing.

Columns are numpy arrays (NaN where a trial has no value), so figures for 5,000 trials are array
operations, never a Python loop per trial. Names are the storage contract's (README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from storage import latency as latency_tables
from storage import REFINE_BASELINE, REFINE_FINAL, REFINE_START, Run, Store, StudyRecord, TrialRecord, list_runs


@dataclass(frozen=True)
class TrialColumns:
    """Every trial of a study, one array per field, in trial-number order."""

    number: np.ndarray  # int
    state: np.ndarray  # str: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: np.ndarray  # the first objective value (the reward of a reward study)
    accuracy: np.ndarray
    latency_ms: np.ndarray
    params: np.ndarray
    macs: np.ndarray
    origin: np.ndarray  # str: "searched", a seed network's name, or "<space> skeleton"

    @classmethod
    def from_trials(cls, trials: list[optuna.trial.FrozenTrial]) -> TrialColumns:
        records = [TrialRecord.from_trial(t) for t in trials]

        def column(values: list[float | None]) -> np.ndarray:
            return np.array(values, dtype=float)  # None -> nan

        return cls(
            number=np.array([t.number for t in trials], dtype=int),
            state=np.array([t.state.name for t in trials], dtype=str),
            value=np.array([t.values[0] if t.values else None for t in trials], dtype=float),
            accuracy=column([r.accuracy for r in records]), latency_ms=column([r.latency_ms for r in records]),
            params=column([r.params for r in records]), macs=column([r.macs for r in records]),
            origin=np.array([r.seed_arch or (f"{r.warm_start} skeleton" if r.warm_start else "searched") for r in records],
                            dtype=str),
        )

    def __len__(self) -> int:
        return len(self.number)


@dataclass(frozen=True)
class StudyData:
    """What the report draws: the study's trials and settings, and the runs and latency models stored
    beside it."""

    name: str
    pareto: bool  # two objectives: accuracy up, latency down
    settings: StudyRecord  # the study's settings (space, target latency, reward, dataset, device)
    metric_names: list[str]
    trials: TrialColumns
    baselines: list[Run]  # nas_runs of kind "baseline" with accuracy and latency
    baselines_elsewhere: int  # baselines trained on another dataset, not drawn
    scale_runs: list[Run]  # nas_runs of kind "scale"
    latency_models: list[dict[str, Any]]  # validated latency models: space, device fingerprint, validation

    @property
    def target_ms(self) -> float | None:
        return self.settings.target_latency_ms


def read_study(study: optuna.Study, store: Store) -> StudyData:
    """Read the study's trials once, and our tables' runs and latency models."""
    trials = TrialColumns.from_trials(study.get_trials(deepcopy=False))
    settings = StudyRecord.from_study(study)
    dataset = settings.dataset
    baselines = [run for run in list_runs(store, kind="baseline") if run.accuracy is not None and run.latency_ms is not None]
    comparable = [run for run in baselines if dataset is None or run.dataset in (None, dataset)]
    models = [{"space": model["space"], "device": table["fingerprint"], "validation": model["validation"]}
              for table in latency_tables.list_tables(store) for model in table["models"]
              if (model["validation"] or {}).get("points")]
    return StudyData(
        name=study.study_name, pareto=len(study.directions) == 2, settings=settings,
        metric_names=study.metric_names or ["value"], trials=trials, baselines=comparable,
        baselines_elsewhere=len(baselines) - len(comparable), scale_runs=list_runs(store, kind="scale"),
        latency_models=models,
    )


@dataclass(frozen=True)
class Refinement:
    """A NetAdapt refinement's study (``nas refine``): every network it scored, and the kept path."""

    study: str
    target_ms: float | None
    proposals: list[TrialRecord]  # every completed shrinking proposal with a latency and an accuracy, kept ones included
    path: list[TrialRecord]  # the kept networks, the start first
    final: TrialRecord | None  # the result after the long fine-tuning, measured; None while the refinement runs
    baseline: TrialRecord | None  # the start after the same fine-tuning, measured beside the result


def _kept_path(records: list[TrialRecord], final: TrialRecord | None) -> list[TrialRecord]:
    """The chain of parents from the result back to the start. Before the result exists, the deepest
    network another one inherits from (the last one kept, as far as the study can tell)."""
    by_number = {r.number: r for r in records}
    if final is not None:
        end = by_number.get(final.parent)
    else:
        kept = [by_number[r.parent] for r in records if r.parent in by_number and r.proposal != REFINE_BASELINE]
        kept += [r for r in records if r.proposal == REFINE_START and r.state == "COMPLETE"]
        end = max(kept, key=lambda r: r.iteration or 0, default=None)
    path: list[TrialRecord] = []
    while end is not None and end.number not in {r.number for r in path}:  # a parent loop (hand-edited) ends the walk
        path.append(end)
        end = by_number.get(end.parent)
    return path[::-1]


def read_refinements(store: Store) -> list[Refinement]:
    """Every refinement study in the database (one whose settings hold ``refine``), in name order."""
    storage = store.optuna()
    found = []
    for summary in sorted(storage.get_all_studies(), key=lambda s: s.study_name):
        settings = StudyRecord.from_study(summary)
        if settings.refine is None:
            continue
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)
        records = [TrialRecord.from_trial(t) for t in trials]
        done = [r for r in records if r.state == "COMPLETE" and r.latency_ms is not None and r.accuracy is not None]
        final = next((r for r in reversed(done) if r.proposal == REFINE_FINAL), None)
        baseline = next((r for r in reversed(done) if r.proposal == REFINE_BASELINE), None)
        found.append(Refinement(summary.study_name, settings.target_latency_ms,
                                [r for r in done if r.proposal not in (REFINE_START, REFINE_FINAL, REFINE_BASELINE)],
                                _kept_path(done, final), final, baseline))
    return found
