"""Predicting a network's latency on one device from its table, in microseconds.

A prediction sums each block string in its context (input channels and size) once and reuses
the sum across networks, then puts the sum through the space's calibration.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.errors import UsageError
from nas.latency.build import Progress, fill_entries
from nas.latency.calibration import Calibration, Entries, Features, feature_sums
from nas.latency.layers import Layer, PlacedBlock, network_layers, place
from nas.latency.measure import DEVICE, Timer
from nas.latency.settings import LatencySettings, describe, device_fingerprint
from search_spaces import Genotype
from storage import Store
from storage import latency as tables


class MissingEntries(UsageError):
    """The table lacks layers of this network (it is outside the space the table was built for)."""

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = layers
        super().__init__(f"the latency table lacks {len(layers)} layer(s) of this network, e.g. {layers[0].key}; "
                         "let `nas latency predict` measure them (the default) or build the table for its space")


@dataclass(frozen=True)
class LatencyPredictor:
    """Predicts a network's latency on one device from its table and calibration."""

    table_id: int
    fingerprint: dict[str, Any]
    entries: Entries
    calibration: Calibration
    space: str | None
    _sums: dict[PlacedBlock, tuple[float, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def resolution(self) -> int:
        return int(self.fingerprint["resolution"])

    def missing(self, genotype: Genotype) -> list[Layer]:
        seen: dict[str, Layer] = {}
        for layer in network_layers(genotype, self.resolution):
            if layer.key not in self.entries:
                seen.setdefault(layer.key, layer)
        return list(seen.values())

    def features(self, genotype: Genotype) -> Features:
        """The calibration's inputs, summed per stem, block string and head."""
        placement = place(genotype, self.resolution)
        try:
            total: Sequence[float] = feature_sums((placement.stem,), self.entries)
            for placed in placement.blocks:
                sums = self._sums.get(placed)
                if sums is None:
                    sums = self._sums[placed] = feature_sums(placed.layers, self.entries)
                total = [a + b for a, b in zip(total, sums, strict=True)]
            total = [a + b for a, b in zip(total, feature_sums((placement.head,), self.entries), strict=True)]
        except KeyError:
            raise MissingEntries(self.missing(genotype)) from None
        return Features(*total)

    def raw_sum(self, genotype: Genotype) -> float:
        """The table's plain sum, before calibration."""
        return self.features(genotype).sum_ms

    def __call__(self, genotype: Genotype) -> float:
        return self.calibration(self.features(genotype))


def find_predictor(store: Store, settings: LatencySettings, space: str | None = None) -> LatencyPredictor | None:
    """The predictor for this device, or None if no table was built for it.

    Calibration comes from ``space`` when given, else from the only (or first) calibrated space
    on the table; a table with no calibration yet predicts the plain sum.
    """
    fingerprint = device_fingerprint(settings)
    table_id = tables.find_table(store, fingerprint)
    if table_id is None:
        return None
    models = [m for m in tables.list_models(store, table_id) if m["calibration"]]
    chosen = next((m for m in models if m["space"] == space), None) if space else (models[0] if models else None)
    if space is not None and chosen is None:
        return None
    calibration = Calibration.from_dict(chosen["calibration"]) if chosen else Calibration()
    return LatencyPredictor(table_id, fingerprint, tables.load_entries(store, table_id), calibration,
                            chosen["space"] if chosen else None)


def load_predictor(store: Store, settings: LatencySettings, space: str | None = None) -> LatencyPredictor:
    """Like ``find_predictor``, but a missing table is a one-line error that says what to run."""
    predictor = find_predictor(store, settings, space)
    if predictor is None:
        what = f"space {space!r} on " if space else ""
        raise UsageError(f"no latency table for {what}this device ({describe(device_fingerprint(settings))}); "
                         f"run `nas latency build --space {space or 'SPACE'}` with the same settings first")
    return predictor


def fill_missing(store: Store, predictor: LatencyPredictor, genotype: Genotype, progress: Progress | None = None, *,
                 timer: Timer = DEVICE) -> tuple[LatencyPredictor, int]:
    """Measure the layers of ``genotype`` the table lacks (on this device) and reload it."""
    layers = predictor.missing(genotype)
    if not layers:
        return predictor, 0
    fill_entries(store, predictor.table_id, layers, LatencySettings.from_fingerprint(predictor.fingerprint), progress,
                 timer=timer)
    return (LatencyPredictor(predictor.table_id, predictor.fingerprint, tables.load_entries(store, predictor.table_id),
                             predictor.calibration, predictor.space), len(layers))


def predictions_per_second(predictor: LatencyPredictor, networks: Sequence[Genotype], min_s: float = 1.0) -> float:
    """Throughput of ``predictor`` on ``networks`` (fresh layer lists each time round)."""
    done, start = 0, time.perf_counter()
    while True:
        for genotype in networks:
            predictor(genotype)
        done += len(networks)
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return done / elapsed
