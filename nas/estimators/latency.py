"""Latency estimators: measured on this device, or predicted from its latency table.

Which one a command uses is decided once, at the boundary (``choose_latency`` from
``--latency auto|lut|measure``); nothing below it knows there was a choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.errors import UsageError
from nas.estimators import LatencyEstimate
from nas.latency import (
    LatencyPredictor, LatencySettings, MissingEntries, describe, device_fingerprint, find_predictor, measure_network,
)
from search_spaces import Genotype
from storage import Store

LATENCY_MODES = ("auto", "lut", "measure")  # auto: the table when one is calibrated for this device and space


def _predict(predictor: LatencyPredictor | None, genotype: Genotype) -> float | None:
    """The table's prediction, or None without a table or for a network outside it (a seed)."""
    if predictor is None:
        return None
    try:
        return predictor(genotype)
    except MissingEntries:
        return None


@dataclass(frozen=True)
class Measured:
    """Timed on this machine (any backend); with a table, its prediction is stored beside."""

    settings: LatencySettings
    predictor: LatencyPredictor | None = None

    @property
    def device(self) -> dict[str, Any]:
        return device_fingerprint(self.settings)

    def latency(self, genotype: Genotype) -> LatencyEstimate:
        predicted = _predict(self.predictor, genotype)
        measured = measure_network(genotype, self.settings)
        return LatencyEstimate(measured.latency_ms, "measured", measured.spread_ms, measured.load_avg, predicted)


@dataclass(frozen=True)
class Table:
    """Predicted from the device's calibrated table in microseconds; a network the table does not
    cover (a paper network outside the space) is measured instead."""

    predictor: LatencyPredictor
    fallback: Measured

    @property
    def device(self) -> dict[str, Any]:
        return self.fallback.device

    def latency(self, genotype: Genotype) -> LatencyEstimate:
        predicted = _predict(self.predictor, genotype)
        if predicted is None:
            return self.fallback.latency(genotype)
        return LatencyEstimate(predicted, "lut", predicted_ms=predicted)


def choose_latency(store: Store, settings: LatencySettings, space: str, mode: str) -> Measured | Table:
    """``auto``: the table when one is calibrated for ``space`` on this device, else measure."""
    if mode not in LATENCY_MODES:
        raise UsageError(f"--latency: unknown {mode!r}; choose one of {', '.join(LATENCY_MODES)}")
    predictor = find_predictor(store, settings, space)
    if mode == "lut" and predictor is None:
        raise UsageError(f"--latency lut: no latency table calibrated for space {space!r} on this device "
                         f"({describe(device_fingerprint(settings))}); run `nas latency build --space {space}`")
    measured = Measured(settings, predictor)
    if predictor is None or mode == "measure":
        return measured
    return Table(predictor, measured)
