"""Latency inside a refinement: the start's measured figure, less what each step's changed layers save.

NetAdapt prices proposals from a per-layer latency table instead of measuring every network. A
stored table fails at that here: its entries were timed minutes apart, and this VM's speed drifts
by 20-30% for seconds at a time, so two entries of one layer 8 channels apart differed by 1.4-3.1
ms where the same pair timed side by side differed by 0.1-0.3 ms, and NetAdapt kept exactly the
proposals whose entries had drifted (``bench/netadapt.py``, 2026-11-29: the table promised 1.5x,
the networks measured 1.09x). So a proposal's saving is the layers it changes, each timed beside
the parent's layer in interleaved rounds (the fastest round of each kept), a per-layer table built
for the pair at hand. Savings are not scaled by whole / sum of layers: what a whole network pays
beyond its layers is per network, not per channel (scaled, the same run overstated savings by 19%).
No whole network is timed while proposals are priced; the loop times each kept network beside
the start before the next iteration prices from it (``nas.refine.loop``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from nas.estimators import LatencyEstimate
from nas.latency import LatencySettings, device_fingerprint
from nas.latency.build import Progress
from nas.latency.layers import Layer, network_layers
from nas.latency.measure import DEVICE, Timer
from nas.refine.proposals import Proposal, narrower_widths, shrink
from search_spaces import Genotype

SIDE_BY_SIDE_ROUNDS = 5  # a changed layer and the parent's, alternately; a burst rarely spans all five rounds


class SideBySideLatency:
    """A refinement's latencies, anchored on the start's measured latency."""

    def __init__(self, settings: LatencySettings, start_ms: float, progress: Progress | None = None, *,
                 timer: Timer = DEVICE) -> None:
        self.settings, self.start_ms, self.progress, self.timer = settings, start_ms, progress, timer
        self.device: dict[str, Any] = device_fingerprint(settings)
        self._saved: dict[tuple[str, str], float] = {}  # (parent's layer, changed layer) -> ms saved, side by side

    def latency(self, genotype: Genotype) -> LatencyEstimate:
        """The start's latency (the only network the refinement prices without a parent)."""
        return LatencyEstimate(self.start_ms, "lut", predicted_ms=self.start_ms)

    def saved_ms(self, parent: Genotype, candidate: Genotype) -> float:
        """What ``candidate`` saves on ``parent``: the layers that differ, each timed beside the other."""
        resolution = self.settings.resolution
        pairs = [(old, new) for old, new in zip(network_layers(parent, resolution), network_layers(candidate, resolution),
                                                 strict=True) if old.key != new.key]
        todo = [(old, new) for old, new in pairs if (old.key, new.key) not in self._saved]
        if todo:
            fastest = self._time_side_by_side(list({layer.key: layer for pair in todo for layer in pair}.values()))
            for old, new in todo:
                self._saved[(old.key, new.key)] = fastest[old.key] - fastest[new.key]
        return sum(self._saved[(old.key, new.key)] for old, new in pairs)

    def _time_side_by_side(self, layers: list[Layer]) -> dict[str, float]:
        """Each layer's fastest of ``SIDE_BY_SIDE_ROUNDS`` rounds, every round over all of them."""
        single = replace(self.settings, passes=1)
        modules = {layer.key: layer.module() for layer in layers}
        fastest = dict.fromkeys(modules, math.inf)
        for round_ in range(SIDE_BY_SIDE_ROUNDS):
            for layer in layers:
                fastest[layer.key] = min(fastest[layer.key], self.timer.layer(layer, modules[layer.key], single).latency_ms)
            if self.progress is not None:
                self.progress("time changed layers side by side", round_ + 1, SIDE_BY_SIDE_ROUNDS)
        return fastest

    def largest_width(self, parent: Genotype, parent_ms: float, proposal: Proposal,
                      goal_ms: float) -> tuple[int, Genotype, float] | None:
        """The widest setting of ``proposal`` whose latency meets ``goal_ms``: (width, network,
        latency), or None when even the narrowest does not. Latency grows with width, so a
        binary search over the widths finds it in a few side-by-side timings."""
        widths = narrower_widths(parent, proposal)
        if not widths:
            return None
        narrowest = shrink(parent, proposal, widths[0])
        best = (widths[0], narrowest, parent_ms - self.saved_ms(parent, narrowest))
        if best[2] > goal_ms:
            return None
        low, high = 1, len(widths) - 1  # widths[:low] meet the goal; above high, none is known to
        while low <= high:
            middle = (low + high) // 2
            candidate = shrink(parent, proposal, widths[middle])
            latency = parent_ms - self.saved_ms(parent, candidate)
            if latency <= goal_ms:
                best, low = (widths[middle], candidate, latency), middle + 1
            else:
                high = middle - 1
        return best
