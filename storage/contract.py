"""The storage contract: what nas writes into Optuna's trial and study attributes, as types.

Dashboards, reports, scripts and later tools read trials through ``TrialRecord`` and studies
through ``StudyRecord``, never through attribute-name strings, so a field is named in exactly
one place. Attribute names are the dataclass fields; absent (``None``) fields are not stored.
Studies written by earlier versions stay readable: every field is optional on reading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from collections.abc import Mapping
from typing import Any, Protocol


class AttrTarget(Protocol):
    """Where attributes are written: an ``optuna.Trial`` or an ``optuna.Study``."""

    def set_user_attr(self, key: str, value: Any) -> None: ...


INTERRUPTED = "interrupted"  # the fail_reason of a trial stopped by Ctrl-C or a kill: it is run again
LATENCY_CONSTRAINT = "latency_ms"  # a Pareto trial's constraint: its latency minus the target (feasible <= 0)
PARETO_METRICS = ("accuracy", "latency_ms")  # a Pareto study's objective names, as optuna-dashboard shows them
REWARD_METRICS = ("reward",)
# a NetAdapt refinement's trials that are not shrinking proposals (``TrialRecord.proposal``): the start network,
# and the start and the result after the same long fine-tuning, measured side by side
REFINE_START, REFINE_BASELINE, REFINE_FINAL = "start", "baseline", "final"
# fields added to the device fingerprint after devices were stored, with the value every fingerprint
# stored before them was measured with: a fingerprint that lacks one is read with this value
DEVICE_IMPLIED = {"allocator": "kept"}


def read_device(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """A stored device fingerprint with the fields older versions left implied filled in."""
    return {**DEVICE_IMPLIED, **fingerprint}


def device_identity(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint as devices were keyed before a field was added: equal for an old and a new
    fingerprint of the same device, so tables stored before the field are still found."""
    return {k: v for k, v in fingerprint.items() if DEVICE_IMPLIED.get(k, object()) != v}


@dataclass(frozen=True)
class TrialRecord:
    """One trial: Optuna's identity and state, and the attributes nas stores with it."""

    number: int | None = None
    state: str | None = None  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    reward: float | None = None  # the trial's value in a single-objective study
    # -- stored attributes --
    arch_def: list[list[str]] | None = None  # timm block strings, one list per stage
    network: dict[str, Any] | None = None  # stem, head and other network-level settings
    arch_key: str | None = None  # the genotype's canonical key: equal networks, equal keys
    params: int | None = None
    macs: int | None = None  # at the device's resolution, torch's FLOP counter / 2
    latency_ms: float | None = None
    latency_spread_ms: float | None = None  # interquartile range of the timed runs
    load_avg: float | None = None  # 1-minute load average while measuring
    latency_source: str | None = None  # "measured" in the trial, "lut" (table), "checked" (measured after the search)
    latency_predicted_ms: float | None = None  # the device's latency table's prediction
    device: dict[str, Any] | None = None  # fingerprint of the device the latency is for
    accuracy: float | None = None  # the estimator's accuracy, last reported
    estimator: str | None = None  # which AccuracyEstimator produced ``accuracy``
    scores: dict[str, float] | None = None  # a hybrid search's screening estimate of a trained trial, by estimator
    seed_arch: str | None = None  # the paper network this trial evaluates, when it is one
    warm_start: str | None = None  # the space whose skeleton network this trial is
    fail_reason: str | None = None
    timings_s: dict[str, float] | None = None  # seconds per phase of the trial
    # a scaling-grid trial's point
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    resolution: int | None = None
    depth: float | None = None
    width: float | None = None
    proxy_resolution: int | None = None
    # a NetAdapt refinement's step (`nas refine`); its path is the chain of parents from "final"
    parent: int | None = None  # the trial of the same study whose weights this one inherits
    iteration: int | None = None  # 0: the start network; i: the i-th shrinking step
    proposal: str | None = None  # REFINE_START/BASELINE/FINAL, or what shrank: "expand 3.1 384->256", "width 3.0-3.3 64->56"

    @classmethod
    def from_trial(cls, trial: Any) -> TrialRecord:
        """Read an ``optuna.trial.FrozenTrial``."""
        values = trial.values
        return replace(cls.from_attrs(trial.user_attrs), number=trial.number, state=trial.state.name,
                       reward=values[0] if values is not None and len(values) == 1 else None)

    @classmethod
    def from_attrs(cls, user_attrs: Mapping[str, Any]) -> TrialRecord:
        """Read the attributes alone (a running ``optuna.Trial``'s ``user_attrs``)."""
        attrs = {k: v for k, v in user_attrs.items() if k in _TRIAL_ATTRS}
        if attrs.get("device"):
            attrs["device"] = read_device(attrs["device"])
        if "latency_ms" in attrs:  # before latency tables existed every latency was measured
            attrs.setdefault("latency_source", "measured")
        return cls(**attrs)

    def to_attrs(self) -> dict[str, Any]:
        """The stored attributes that are set."""
        return {k: v for k, v in asdict(self).items() if k in _TRIAL_ATTRS and v is not None}

    def provenance(self) -> dict[str, Any]:
        """What an architecture file exported from this trial says about where it came from."""
        return {"trial": self.number, "state": self.state, "device": self.device, "latency_ms": self.latency_ms,
                "accuracy": self.accuracy, "params": self.params, "macs": self.macs}

    def replay_attrs(self) -> dict[str, Any]:
        """What an interrupted trial needs to be run again: which seed network or skeleton it was."""
        return {k: v for k, v in self.to_attrs().items() if k in _REPLAY_ATTRS}


_TRIAL_ATTRS = frozenset(f.name for f in fields(TrialRecord)) - {"number", "state", "reward"}
_REPLAY_ATTRS = ("seed_arch", "warm_start")


class TrialAttrStorage(Protocol):
    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class StoredTrial:
    """A stored trial as a ``write_trial`` target, for a process that holds no live
    ``optuna.Trial`` of it (a trial a killed run left, a Ray trial seen from the driver)."""

    storage: TrialAttrStorage
    trial_id: int

    def set_user_attr(self, key: str, value: Any) -> None:
        self.storage.set_trial_user_attr(self.trial_id, key, value)


def write_trial(trial: AttrTarget, **attrs: Any) -> None:
    """Store contract fields on a running trial; an unknown name is a bug, caught here."""
    unknown = set(attrs) - _TRIAL_ATTRS
    if unknown:
        raise TypeError(f"not trial attributes of the storage contract: {', '.join(sorted(unknown))}")
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


@dataclass(frozen=True)
class StudyRecord:
    """A study's settings: a resumed study must be run with the same ones."""

    space: str | None = None  # a search space, or "scale-grid"
    target_latency_ms: float | None = None
    reward: str | None = None  # "soft", "hard" or "pareto"
    reward_weight: float | None = None
    dataset: str | None = None
    device: dict[str, Any] | None = None
    proxy: dict[str, Any] | None = None  # the proxy training's settings
    estimator: dict[str, Any] | None = None  # the accuracy estimator's name and settings
    # a scaling grid's
    base: str | None = None
    base_arch: dict[str, Any] | None = None
    base_resolution: int | None = None
    grid: dict[str, Any] | None = None
    base_latency_ms: float | None = None
    refine: dict[str, Any] | None = None  # a NetAdapt refinement's schedule, selection rule and tuning budgets

    @classmethod
    def from_study(cls, study: Any) -> StudyRecord:
        """Read an ``optuna.Study`` (or a ``FrozenStudy``)."""
        attrs = {k: v for k, v in study.user_attrs.items() if k in _STUDY_ATTRS}
        if attrs.get("device"):
            attrs["device"] = read_device(attrs["device"])
        return cls(**attrs)

    def to_attrs(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def write(self, study: AttrTarget) -> None:
        for key, value in self.to_attrs().items():
            study.set_user_attr(key, value)

    @property
    def estimator_name(self) -> str | None:
        """Which estimator the study ranks by: a resumed study keeps it (its settings, such as the
        training epochs, may change, as ``proxy`` may)."""
        return (self.estimator or {}).get("name")

    def mismatch(self, stored: StudyRecord, keys: tuple[str, ...]) -> tuple[str, Any, Any] | None:
        """The first of ``keys`` where ``stored`` differs from these settings: (name, stored, ours).
        A setting the stored study does not have (an older version wrote it) is not compared, and of
        ``estimator`` only the name is (its settings may change on resume, as the proxy's may)."""
        for key in keys:
            if key == "estimator":
                continue
            ours = read_device(self.device) if key == "device" and self.device else getattr(self, key)  # as stored ones are read
            if getattr(stored, key) is not None and getattr(stored, key) != ours:
                return key, getattr(stored, key), ours
        if "estimator" in keys and stored.estimator_name is not None and stored.estimator_name != self.estimator_name:
            return "estimator", stored.estimator_name, self.estimator_name
        return None


_STUDY_ATTRS = frozenset(f.name for f in fields(StudyRecord))
# what a resumed study must share with the command, or its trials would not compare
SEARCH_MUST_MATCH = ("space", "target_latency_ms", "reward", "reward_weight", "dataset", "device", "estimator")
GRID_TARGET = ("target_latency_ms",)  # a grid given a target must keep it; without one, the stored one holds
GRID_MUST_MATCH = ("space", "base_arch", "base_resolution", "grid", "dataset", "device", "proxy", "reward", "reward_weight")
