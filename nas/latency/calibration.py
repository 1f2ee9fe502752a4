"""From summed layer latencies to a whole network's latency.

Summed entries are not the whole network's latency: measured alone, a layer finds its weights
and input in cache, and the sum was 76-96% of the whole network here. So the sum goes through a
linear model fitted on whole-network measurements of random networks of the space: the summed
latency, the layer count, the weights and the activations touched, minimising relative error;
the feature set is the one with the lowest leave-one-out error on those measurements.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from nas.errors import UsageError
from nas.latency.layers import Layer

Entries = Mapping[str, tuple[float, int]]  # a table: layer key -> (latency in ms, params)


class Features(NamedTuple):
    """A network's calibration inputs: its table sum and what the sum misses."""

    sum_ms: float  # the table's plain sum
    layers: float
    mparams: float  # weights, millions
    mactivations: float  # layer inputs, million elements
    mexpanded: float  # widest tensors inside the layers, million elements

    @classmethod
    def of(cls, layers: Iterable[Layer], entries: Entries) -> Features:
        """Raises ``KeyError`` for a layer the table lacks."""
        return cls(*feature_sums(layers, entries))

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Features:
        """Stored features; those older tables did not store yet read as NaN."""
        return cls(*(float(data.get(name, np.nan)) for name in cls._fields))


FEATURE_SETS = [s for n in range(1, 5) for s in itertools.combinations(Features._fields, n) if s[0] == "sum_ms"]


def feature_sums(layers: Iterable[Layer], entries: Entries) -> tuple[float, ...]:
    """``Features`` of ``layers`` as a plain tuple: a predictor adds these per block string."""
    latency = params = activations = expanded = 0.0
    count = 0
    for layer in layers:
        entry = entries[layer.key]
        latency += entry[0]
        params += entry[1]
        activations += layer.activations
        expanded += layer.expanded
        count += 1
    return latency, float(count), params / 1e6, activations / 1e6, expanded / 1e6


@dataclass(frozen=True)
class CalibrationPoint:
    """One whole network measured for the calibration (stored with it)."""

    arch_key: str
    measured_ms: float
    spread_ms: float
    pass_ms: tuple[float, ...]
    features: Features

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "pass_ms": list(self.pass_ms), "features": self.features._asdict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationPoint:
        """Points of tables built before rounds were stored lack ``pass_ms``."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        return cls(**{**values, "pass_ms": tuple(data.get("pass_ms", ())), "features": Features.from_dict(data["features"])})


def _columns(points: Sequence[CalibrationPoint], names: Sequence[str]) -> np.ndarray:
    return np.array([[getattr(p.features, name) for name in names] for p in points])


@dataclass(frozen=True)
class Calibration:
    """``latency = intercept + sum(coefficient * feature)``, fitted on whole-network measurements."""

    features: tuple[str, ...] = ("sum_ms",)
    coefficients: tuple[float, ...] = (1.0,)
    intercept: float = 0.0
    loo_rmse_pct: float | None = None  # leave-one-out relative error of this choice
    samples: int = 0
    points: tuple[CalibrationPoint, ...] = ()

    def __call__(self, features: Features) -> float:
        return self.intercept + sum(c * getattr(features, f) for f, c in zip(self.features, self.coefficients, strict=True))

    def outside(self, features: Features, margin: float = 0.1) -> list[str]:
        """Features beyond the calibration networks' range (+-margin): the fit extrapolates there."""
        far = []
        for name in self.features:
            seen = [getattr(p.features, name) for p in self.points]
            value = getattr(features, name)
            if seen and not min(seen) * (1 - margin) <= value <= max(seen) * (1 + margin):
                far.append(f"{name} {value:.3g} (calibrated {min(seen):.3g}-{max(seen):.3g})")
        return far

    @classmethod
    def fit(cls, points: Sequence[CalibrationPoint]) -> Calibration:
        """Pick the feature set with the lowest leave-one-out relative error, then fit it on all.

        Least squares on relative error is least squares on latency with each network weighted
        by 1/latency^2. Errors equal to 1e-9 % are a tie, won by the smaller set (listed first):
        a feature earns its place only by lowering the error.
        """
        # imported here, not with the module: scikit-learn takes ~2 s to import on a 2-core machine, and
        # every process that times or predicts imports this module (the measuring child too); only a fit needs it
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import LeaveOneOut, cross_val_predict

        y = np.array([p.measured_ms for p in points])
        weight = 1 / y ** 2
        scored = []
        for names in FEATURE_SETS:
            if len(names) + 2 > len(points):
                continue
            predicted = cross_val_predict(LinearRegression(), _columns(points, names), y, cv=LeaveOneOut(),
                                          params={"sample_weight": weight})
            scored.append((float(np.sqrt(np.mean(np.square(predicted / y - 1))) * 100), names))
        if not scored:
            raise UsageError(f"calibration needs at least 3 whole-network measurements, got {len(points)}")
        rmse, names = min(scored, key=lambda s: round(s[0], 9))
        model = LinearRegression().fit(_columns(points, names), y, sample_weight=weight)
        return cls(names, tuple(float(c) for c in model.coef_), float(model.intercept_), rmse, len(points), tuple(points))

    def summary(self) -> dict[str, Any]:
        """The stored form without the points: what commands print and validation keeps."""
        return {"features": list(self.features), "coefficients": list(self.coefficients), "intercept": self.intercept,
                "loo_rmse_pct": self.loo_rmse_pct, "samples": self.samples}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "points": [p.to_dict() for p in self.points]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(tuple(data["features"]), tuple(data["coefficients"]), data["intercept"], data.get("loo_rmse_pct"),
                   data.get("samples", 0), tuple(CalibrationPoint.from_dict(p) for p in data.get("points", [])))
