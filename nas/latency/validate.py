"""Scoring a table against reality: whole networks the calibration never saw, measured end to end.

The report (``ValidationReport``) is stored with the table as JSON in the keys it has always had,
so the dashboard's figure and ``nas latency devices`` read reports of any version.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

import numpy as np

from nas.errors import UsageError
from nas.latency.build import Progress, measure_networks
from nas.latency.calibration import Calibration
from nas.latency.layers import random_networks, space_named
from nas.latency.measure import DEVICE, Timer
from nas.latency.predictor import load_predictor
from nas.latency.settings import LatencySettings
from nas.metrics import count_macs
from storage import Store
from storage import latency as tables

VALIDATION_SEED = 20_000  # never the calibration's networks (nas.latency.build.CALIBRATION_SEED)


def _as_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The stored keys ``cls`` has a field for (reports of earlier versions hold others)."""
    return {f.name: data[f.name] for f in fields(cls) if f.name in data}


@dataclass(frozen=True)
class ValidationPoint:
    """One unseen network: the table's prediction against its measurement."""

    arch_key: str
    predicted_ms: float
    measured_ms: float
    spread_ms: float
    pass_ms: tuple[float, ...]  # each measuring round (the fastest is measured_ms)
    sum_ms: float  # the table's plain sum, uncalibrated
    load_avg: float
    macs: int

    def to_dict(self) -> dict[str, Any]:
        return {**_as_dict(self), "pass_ms": list(self.pass_ms)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationPoint:
        return cls(**{**_known(cls, data), "pass_ms": tuple(data.get("pass_ms", ()))})


@dataclass(frozen=True)
class SumRatio:
    """The table's plain sum over the whole network's latency."""

    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class MeasurementNoise:
    """How far one measuring round of a network lands from another: the floor under any predictor."""

    rounds: int | None = None
    rerun_within_5pct: float | None = None  # None with a single round
    rerun_within_10pct: float | None = None
    rerun_rms_pct: float | None = None
    median_iqr_pct: float | None = None  # interquartile range of the timed runs, median over networks
    load_avg_max: float | None = None


def _within(errors: np.ndarray, pct: float) -> float:
    return float(np.mean(np.abs(errors) <= pct / 100))


@dataclass(frozen=True)
class ValidationReport:
    space: str
    samples: int
    device: dict[str, Any]  # the fingerprint of the table
    within_5pct: float  # share of networks predicted within +-5%
    within_10pct: float
    rmse_ms: float
    mean_abs_error_pct: float
    spearman: float
    kendall_tau: float
    macs_kendall_tau: float  # what ranking by FLOPs would give
    uncalibrated_within_10pct: float
    sum_to_whole_ratio: SumRatio
    measurement_noise: MeasurementNoise
    measurements_per_s: float
    calibration: Calibration  # without its points
    points: tuple[ValidationPoint, ...]

    @classmethod
    def score(cls, space: str, device: dict[str, Any], points: list[ValidationPoint], calibration: Calibration,
              measurements_per_s: float) -> ValidationReport:
        from scipy import stats

        predicted = np.array([p.predicted_ms for p in points])
        measured = np.array([p.measured_ms for p in points])
        errors = predicted / measured - 1
        ratio = np.array([p.sum_ms for p in points]) / measured
        rounds = np.array([p.pass_ms for p in points])
        rerun = rounds[:, 1] / rounds[:, 0] - 1 if rounds.shape[1] > 1 else np.array([])
        noise = MeasurementNoise(
            rounds=int(rounds.shape[1]),
            rerun_within_5pct=_within(rerun, 5) if len(rerun) else None,
            rerun_within_10pct=_within(rerun, 10) if len(rerun) else None,
            rerun_rms_pct=float(np.sqrt(np.mean(rerun ** 2)) * 100) if len(rerun) else None,
            median_iqr_pct=float(np.median([p.spread_ms / p.measured_ms for p in points]) * 100),
            load_avg_max=float(max(p.load_avg for p in points)),
        )
        return cls(
            space=space, samples=len(points), device=device,
            within_5pct=_within(errors, 5), within_10pct=_within(errors, 10),
            rmse_ms=float(np.sqrt(np.mean((predicted - measured) ** 2))),
            mean_abs_error_pct=float(np.mean(np.abs(errors)) * 100),
            spearman=float(stats.spearmanr(predicted, measured).statistic),
            kendall_tau=float(stats.kendalltau(predicted, measured).statistic),
            macs_kendall_tau=float(stats.kendalltau([p.macs for p in points], measured).statistic),
            uncalibrated_within_10pct=_within(ratio - 1, 10),
            sum_to_whole_ratio=SumRatio(float(np.mean(ratio)), float(np.min(ratio)), float(np.max(ratio))),
            measurement_noise=noise, measurements_per_s=measurements_per_s,
            calibration=replace(calibration, points=()), points=tuple(points),
        )

    def summary(self) -> dict[str, Any]:
        """The stored form without the points: what ``nas latency devices`` lists."""
        data = {**_as_dict(self), "sum_to_whole_ratio": _as_dict(self.sum_to_whole_ratio),
                "measurement_noise": _as_dict(self.measurement_noise), "calibration": self.calibration.summary()}
        del data["points"]
        return data

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "points": [p.to_dict() for p in self.points]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationReport:
        return cls(**{
            **_known(cls, data),
            "sum_to_whole_ratio": SumRatio(**data["sum_to_whole_ratio"]),
            "measurement_noise": MeasurementNoise(**_known(MeasurementNoise, data["measurement_noise"])),
            "calibration": Calibration.from_dict(data["calibration"]),
            "points": tuple(ValidationPoint.from_dict(p) for p in data.get("points", [])),
        })


def validate_table(store: Store, space_name: str, settings: LatencySettings, *, samples: int = 100,
                   progress: Progress | None = None, timer: Timer = DEVICE) -> ValidationReport:
    """Measure ``samples`` random networks the calibration never saw and score the predictor.

    Beside the predictor's error it reports the measurement's own noise: how far one round of a
    network's measurement lands from another round. The report is stored with the table.
    """
    space = space_named(space_name)
    if samples < 3:
        raise UsageError(f"--samples must be >= 3, got {samples}")
    predictor = load_predictor(store, settings, space.name)
    seen = [p.arch_key for p in predictor.calibration.points]
    networks = random_networks(space, samples, VALIDATION_SEED, exclude=seen)
    start = time.perf_counter()
    measurements = measure_networks(networks, settings, "validate on unseen networks", progress, timer=timer)
    measure_s = time.perf_counter() - start
    points = [ValidationPoint(g.key, predictor(g), m.latency_ms, m.spread_ms, m.pass_ms, predictor.raw_sum(g), m.load_avg,
                              count_macs(g, settings.resolution)) for g, m in zip(networks, measurements, strict=True)]
    report = ValidationReport.score(space.name, predictor.fingerprint, points, predictor.calibration,
                                    len(points) * settings.passes / measure_s)
    tables.save_model(store, predictor.table_id, space.name, validation=report.to_dict())
    return report


@dataclass(frozen=True)
class SpaceSummary:
    """A space's model on a table: how long its layers took, its calibration and validation."""

    space: str
    build_s: float | None
    calibration: Calibration | None
    validation: ValidationReport | None

    def to_dict(self) -> dict[str, Any]:
        return {**_as_dict(self), "calibration": self.calibration.summary() if self.calibration else None,
                "validation": self.validation.summary() if self.validation else None}


@dataclass(frozen=True)
class TableSummary:
    """One stored table (device) and the spaces modelled on it."""

    id: int
    device_key: str
    fingerprint: dict[str, Any]
    entries: int
    created_at: datetime
    spaces: tuple[SpaceSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**_as_dict(self), "spaces": [s.to_dict() for s in self.spaces]}


def table_summaries(store: Store) -> list[TableSummary]:
    """Every stored table, with its entries and each space's calibration and validation figures."""
    return [TableSummary(table["id"], table["device_key"], table["fingerprint"], table["entries"], table["created_at"], tuple(
        SpaceSummary(model["space"], model["build_s"],
                     Calibration.from_dict(model["calibration"]) if model["calibration"] else None,
                     ValidationReport.from_dict(model["validation"]) if model["validation"] else None)
        for model in table["models"])) for table in tables.list_tables(store)]
