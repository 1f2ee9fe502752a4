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
from storage import Run, Store, StudyRecord, TrialRecord, list_runs


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
