"""Reading stored searches: trial records under the storage contract, ranking, references.

The storage contract (dashboards, scripts and later tools read it): each trial's user attributes
hold ``arch_def``, ``network``, ``latency_ms``, ``latency_spread_ms``, ``accuracy``, ``params``,
``macs`` and ``device``; the study's hold ``space``, ``target_latency_ms``, ``reward``,
``dataset`` and ``device``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.architecture import Architecture, read_architecture
from nas.errors import StudyError, UsageError
from nas.reward import Reward
from search_spaces import SEED_NAMES, Genotype, seed_architecture
from storage import latency as latency_store
from storage import open_optuna_storage, resolve_url

CONTRACT_FIELDS = ("arch_def", "latency_ms", "latency_spread_ms", "accuracy", "params", "macs", "device")


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str
    reward: float | None
    accuracy: float | None
    latency_ms: float | None
    latency_spread_ms: float | None
    latency_predicted_ms: float | None  # from the device's latency table, when one exists
    latency_source: str | None  # "measured" in the trial, "lut" (predicted), or "checked" (measured after the search)
    params: int | None
    macs: int | None
    arch_def: list[list[str]] | None
    network: dict[str, Any] | None
    device: dict[str, Any] | None
    seed_arch: str | None
    warm_start: str | None  # the space whose skeleton network this trial is
    fail_reason: str | None

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialRecord:
        attrs = trial.user_attrs
        value = trial.values[0] if trial.values and len(trial.values) == 1 else None
        return cls(
            number=trial.number, state=trial.state.name, reward=value,
            accuracy=attrs.get("accuracy"), latency_ms=attrs.get("latency_ms"),
            latency_spread_ms=attrs.get("latency_spread_ms"), latency_predicted_ms=attrs.get("latency_predicted_ms"),
            latency_source=attrs.get("latency_source", "measured" if "latency_ms" in attrs else None),
            params=attrs.get("params"),
            macs=attrs.get("macs"), arch_def=attrs.get("arch_def"), network=attrs.get("network"),
            device=attrs.get("device"), seed_arch=attrs.get("seed_arch"), warm_start=attrs.get("warm_start"),
            fail_reason=attrs.get("fail_reason"),
        )

    @property
    def genotype(self) -> Genotype | None:
        if self.arch_def is None:
            return None
        return Genotype.from_dict({"arch_def": self.arch_def, **(self.network or {})})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_study(storage_url: str | None, name: str | None) -> optuna.Study:
    """Load ``name``, or the only study in the database when no name is given."""
    url = resolve_url(storage_url)
    storage = open_optuna_storage(url)
    names = optuna.get_all_study_names(storage)
    if name is None:
        if len(names) == 1:
            name = names[0]
        elif not names:
            raise StudyError(f"no study in {url}; run `nas search` first")
        else:
            raise StudyError(f"{len(names)} studies in {url}; pick one with --study: {', '.join(names)}")
    if name not in names:
        known = ", ".join(names) or "none"
        raise StudyError(f"no study named {name!r} in {url}; studies there: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def trial_records(study: optuna.Study, checks: dict[int, dict[str, Any]] | None = None) -> list[TrialRecord]:
    """The study's trials; ``checks`` (``storage.latency.trial_latencies``) replace a table's
    predicted latency by the real measurement taken after the search."""
    records = [TrialRecord.from_trial(t) for t in study.get_trials(deepcopy=False)]
    if checks:
        records = [replace(r, latency_ms=checks[r.number]["latency_ms"], latency_spread_ms=checks[r.number]["spread_ms"],
                           latency_source="checked") if r.number in checks else r for r in records]
    return records


def study_checks(storage_url: str | None, study: optuna.Study) -> dict[int, dict[str, Any]]:
    """Trials of ``study`` measured for real after a table-predicted search."""
    return latency_store.trial_latencies(resolve_url(storage_url), study.study_name)


def study_reward(study: optuna.Study, target_ms: float | None = None, kind: str | None = None) -> Reward:
    """The study's reward, optionally for another target or kind (a Pareto study scores 'soft')."""
    attrs = study.user_attrs
    stored_kind = attrs.get("reward", "soft")
    kind = kind or (stored_kind if stored_kind != "pareto" else "soft")
    weight = attrs.get("reward_weight") if kind == stored_kind else None
    return Reward(kind, target_ms or attrs["target_latency_ms"], weight)


def rank(study: optuna.Study, reward: Reward, top: int | None = None,
         checks: dict[int, dict[str, Any]] | None = None) -> list[tuple[float, TrialRecord]]:
    """Completed trials re-scored from stored accuracy and latency, best first; nothing retrains."""
    scored = [
        (reward(r.accuracy, r.latency_ms), r)
        for r in trial_records(study, checks)
        if r.state == TrialState.COMPLETE.name and r.accuracy is not None and r.latency_ms is not None
    ]
    scored.sort(key=lambda pair: (-pair[0], pair[1].latency_ms))
    return scored[:top] if top else scored


def resolve_architecture(ref: str, storage_url: str | None = None, study: str | None = None) -> Architecture:
    """``ref`` is a seed name, a trial number of the study, or an architecture JSON file."""
    if ref in SEED_NAMES:
        return Architecture(ref, seed_architecture(ref))
    if ref.isdigit():
        loaded = load_study(storage_url, study)
        number = int(ref)
        trials = loaded.get_trials(deepcopy=False)
        if number >= len(trials):
            raise UsageError(f"study {loaded.study_name!r} has no trial {number} (it has {len(trials)})")
        record = TrialRecord.from_trial(trials[number])
        if record.genotype is None:
            raise UsageError(f"trial {number} of {loaded.study_name!r} has no architecture ({record.state})")
        provenance = {"study": loaded.study_name, "trial": number, "state": record.state, "device": record.device,
                      "latency_ms": record.latency_ms, "accuracy": record.accuracy, "params": record.params,
                      "macs": record.macs}
        resolution = (record.device or {}).get("resolution")
        return Architecture(f"{loaded.study_name}/{number}", record.genotype, resolution, provenance)
    path = Path(ref)
    if path.is_file():
        return read_architecture(path)
    raise UsageError(
        f"{ref!r} is not a known architecture, a trial number or a file; known names: {', '.join(SEED_NAMES)}"
    )
