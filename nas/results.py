"""Reading stored searches: trial records, ranking, and architectures named by reference.

The storage contract itself (what each trial and study stores) is ``storage.contract``; this
module adds what needs nas's own types: a record's genotype, the study's reward, ranking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.architecture import Architecture, read_architecture
from nas.errors import StudyError, UsageError
from nas.reward import Reward
from search_spaces import PAPER_NAMES, Genotype, seed_architecture
from storage import Store, StudyRecord, TrialRecord
from storage import latency as latency_store
from storage.latency import TrialLatency


def record_genotype(record: TrialRecord) -> Genotype | None:
    """The network a trial evaluated, or None (a trial that failed before it had one)."""
    if record.arch_def is None:
        return None
    return Genotype.from_arch_def(record.arch_def, **(record.network or {}))


def record_json(record: TrialRecord) -> dict[str, Any]:
    """A record as JSON for ``--json`` output: the contract's field names."""
    return asdict(record)


def load_study(store: Store, name: str | None) -> optuna.Study:
    """Load ``name``, or the only study in the database when no name is given."""
    storage = store.optuna()
    names = optuna.get_all_study_names(storage)
    if name is None:
        if len(names) == 1:
            name = names[0]
        elif not names:
            raise StudyError(f"no study in {store}; run `nas search` first")
        else:
            raise StudyError(f"{len(names)} studies in {store}; pick one with --study: {', '.join(names)}")
    if name not in names:
        known = ", ".join(names) or "none"
        raise StudyError(f"no study named {name!r} in {store}; studies there: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def trial_records(study: optuna.Study, checks: dict[int, TrialLatency] | None = None) -> list[TrialRecord]:
    """The study's trials; ``checks`` (``storage.latency.trial_latencies``) replace a table's
    predicted latency by the real measurement taken after the search."""
    records = [TrialRecord.from_trial(t) for t in study.get_trials(deepcopy=False)]
    if checks:
        records = [replace(r, latency_ms=checks[r.number].latency_ms, latency_spread_ms=checks[r.number].spread_ms,
                           latency_source="checked") if r.number in checks else r for r in records]
    return records


def study_checks(store: Store, study: optuna.Study) -> dict[int, TrialLatency]:
    """Trials of ``study`` measured for real after a table-predicted search."""
    return latency_store.trial_latencies(store, study.study_name)


def study_reward(study: optuna.Study, target_ms: float | None = None, kind: str | None = None) -> Reward:
    """The study's reward, optionally for another target or kind (a Pareto study scores 'soft')."""
    settings = StudyRecord.from_study(study)
    stored_kind = settings.reward or "soft"
    kind = kind or (stored_kind if stored_kind != "pareto" else "soft")
    weight = settings.reward_weight if kind == stored_kind else None
    return Reward(kind, target_ms or settings.target_latency_ms, weight)


def rank(study: optuna.Study, reward: Reward, top: int | None = None,
         checks: dict[int, TrialLatency] | None = None) -> list[tuple[float, TrialRecord]]:
    """Completed trials re-scored from stored accuracy and latency, best first; nothing retrains."""
    scored = [
        (reward(r.accuracy, r.latency_ms), r)
        for r in trial_records(study, checks)
        if r.state == TrialState.COMPLETE.name and r.accuracy is not None and r.latency_ms is not None
    ]
    scored.sort(key=lambda pair: (-pair[0], pair[1].latency_ms))
    return scored[:top] if top else scored


def is_pareto(study: optuna.Study) -> bool:
    """Two objectives (accuracy up, latency down): the study's answer is a front, not one trial."""
    return len(study.directions) == 2


@dataclass(frozen=True)
class Front:
    """A Pareto study's non-dominated trials, fastest first, judged against a latency target.

    Its members within the target are exactly Optuna's ``study.best_trials`` (the study's latency
    constraint); the slower members stay, so another target can pick among them.
    """

    members: tuple[TrialRecord, ...]
    target_ms: float
    completed: int  # completed trials the front was taken from

    @property
    def choice(self) -> TrialRecord | None:
        """The most accurate member within the target (the faster of equals), or None."""
        within = [r for r in self.members if r.latency_ms <= self.target_ms]
        return max(within, key=lambda r: (r.accuracy, -r.latency_ms), default=None)


def _dominated(a: TrialRecord, b: TrialRecord) -> bool:
    """``b`` is at least as accurate and as fast as ``a``, and better in one."""
    return (b.accuracy >= a.accuracy and b.latency_ms <= a.latency_ms
            and (b.accuracy > a.accuracy or b.latency_ms < a.latency_ms))


def pareto_front(study: optuna.Study, target_ms: float | None = None,
                 checks: dict[int, TrialLatency] | None = None) -> Front:
    """The non-dominated completed trials of ``study`` by (accuracy, latency), fastest first;
    ``target_ms`` defaults to the study's own target."""
    done = [r for r in trial_records(study, checks)
            if r.state == TrialState.COMPLETE.name and r.accuracy is not None and r.latency_ms is not None]
    members = sorted((r for r in done if not any(_dominated(r, other) for other in done)),
                     key=lambda r: (r.latency_ms, -r.accuracy, r.number))
    return Front(tuple(members), target_ms or StudyRecord.from_study(study).target_latency_ms, len(done))


def front_json(front: Front) -> dict[str, Any]:
    """A front for ``--json``: each member under the contract's names, with whether it meets the target."""
    choice = front.choice
    return {"pareto": True, "target_latency_ms": front.target_ms, "completed": front.completed,
            "choice": None if choice is None else choice.number,
            "front": [{**record_json(r), "meets_target": r.latency_ms <= front.target_ms} for r in front.members]}


def trial_architecture(study_name: str, record: TrialRecord) -> Architecture:
    """The same file `nas export --format json` writes for this trial."""
    provenance = {"study": study_name, **record.provenance()}
    return Architecture(f"{study_name}/{record.number}", record_genotype(record),
                        (record.device or {}).get("resolution"), provenance)


def resolve_architecture(ref: str, store: Store, study: str | None = None) -> Architecture:
    """``ref`` is a seed name, a trial number of the study, or an architecture JSON file."""
    if ref in PAPER_NAMES:
        return Architecture(ref, seed_architecture(ref))
    if ref.isdigit():
        loaded = load_study(store, study)
        number = int(ref)
        trials = loaded.get_trials(deepcopy=False)
        if number >= len(trials):
            raise UsageError(f"study {loaded.study_name!r} has no trial {number} (it has {len(trials)})")
        record = TrialRecord.from_trial(trials[number])
        if record.arch_def is None:
            raise UsageError(f"trial {number} of {loaded.study_name!r} has no architecture ({record.state})")
        return trial_architecture(loaded.study_name, record)
    path = Path(ref)
    if path.is_file():
        return read_architecture(path)
    raise UsageError(
        f"{ref!r} is not a known architecture, a trial number or a file; known names: {', '.join(PAPER_NAMES)}"
    )
