"""Latency inside a refinement: the device's latency table, anchored on the start's measurement.

NetAdapt looks latencies up in a per-layer table instead of measuring every proposal. The table's
sum misses what a whole network pays beyond its layers (the sum was 76-96% of the whole here), so
a shrunk network's latency is the start's measured latency times the ratio of the two sums:
nearby networks share that gap. A layer the table lacks (a width never seen) is measured once on
this device and stored; no whole network is timed inside the loop.
"""

from __future__ import annotations

from typing import Any

from nas.estimators import LatencyEstimate
from nas.latency import Calibration, LatencyPredictor, LatencySettings, device_fingerprint, fill_missing, find_predictor
from nas.latency.build import Progress
from nas.refine.proposals import Proposal, narrower_widths, shrink
from search_spaces import Genotype
from storage import Store
from storage import latency as tables


class AnchoredTable:
    """A ``LatencyEstimator`` from the device's table, anchored on a measured start network."""

    def __init__(self, store: Store, settings: LatencySettings, start: Genotype, start_ms: float,
                 progress: Progress | None = None) -> None:
        self.store, self.progress = store, progress
        predictor = find_predictor(store, settings)
        if predictor is None:  # a device without a table gets one, filled with this network's layers
            fingerprint = device_fingerprint(settings)
            predictor = LatencyPredictor(tables.get_or_create_table(store, fingerprint), fingerprint, {}, Calibration(), None)
        self.predictor = predictor
        self.start_ms = start_ms
        self.start_sum_ms = self.table_sum(start)

    @property
    def device(self) -> dict[str, Any]:
        return self.predictor.fingerprint

    def table_sum(self, genotype: Genotype) -> float:
        """The table's plain sum for ``genotype``, measuring (once) the layers it lacks."""
        if self.predictor.missing(genotype):
            self.predictor, _ = fill_missing(self.store, self.predictor, genotype, self.progress)
        return self.predictor.raw_sum(genotype)

    def __call__(self, genotype: Genotype) -> float:
        return self.start_ms * self.table_sum(genotype) / self.start_sum_ms

    def latency(self, genotype: Genotype) -> LatencyEstimate:
        predicted = self(genotype)
        return LatencyEstimate(predicted, "lut", predicted_ms=predicted)

    def largest_width(self, genotype: Genotype, proposal: Proposal, goal_ms: float) -> tuple[int, Genotype, float] | None:
        """The widest setting of ``proposal`` whose latency meets ``goal_ms``: (width, network,
        latency), or None when even the narrowest does not. Latency grows with width, so a
        binary search over the widths finds it in a few table lookups."""
        widths = narrower_widths(genotype, proposal)
        if not widths:
            return None
        narrowest = shrink(genotype, proposal, widths[0])
        best = (widths[0], narrowest, self(narrowest))
        if best[2] > goal_ms:
            return None
        low, high = 1, len(widths) - 1  # widths[:low] meet the goal; above high, none is known to
        while low <= high:
            middle = (low + high) // 2
            candidate = shrink(genotype, proposal, widths[middle])
            latency = self(candidate)
            if latency <= goal_ms:
                best, low = (widths[middle], candidate, latency), middle + 1
            else:
                high = middle - 1
        return best
