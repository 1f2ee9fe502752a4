"""A device whose latencies are known: build, calibrate and validate compute exact figures from it.

A real ``nas.latency.Timer``, not a mock: the table code times through it exactly as through the
machine. Nothing is timed, so every figure a test checks follows from the numbers below.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

import torch

from nas.latency import Layer, LatencySettings, Measurement, network_layers
from search_spaces import Genotype

INTERCEPT, PER_SUM, PER_LAYER = 0.25, 1.25, 0.0625  # a whole network: 0.25 + 1.25 x table sum + 0.0625 x layers
ROUND_FACTORS = (1.03125, 1.0, 1.5)  # round r takes this times the time: the second round is the fastest
SPREAD_MS, LOAD_AVG = 0.01, 0.25


def layer_ms(key: str) -> float:
    """A layer's (fastest) latency: fixed by its key, between 0.05 and 0.15 ms."""
    return 0.05 + (zlib.crc32(key.encode()) % 1000) / 1e4


def table_sum(genotype: Genotype, resolution: int) -> float:
    return sum(layer_ms(layer.key) for layer in network_layers(genotype, resolution))


def network_ms(genotype: Genotype, resolution: int) -> float:
    """A whole network's (fastest) latency: exactly linear in its table sum and layer count."""
    return INTERCEPT + PER_SUM * table_sum(genotype, resolution) + PER_LAYER * len(network_layers(genotype, resolution))


class Interrupted(KeyboardInterrupt):
    """What Ctrl-C raises in the middle of a build."""


@dataclass
class KnownDevice:
    """Times from ``layer_ms`` and ``network_ms``; ``skew`` multiplies chosen networks' times (by
    arch key), and ``stop_after`` layer rounds the build is interrupted."""

    skew: dict[str, float] = field(default_factory=dict)
    stop_after: int | None = None
    layer_rounds: Counter = field(default_factory=Counter)  # rounds timed so far, by layer key
    network_rounds: Counter = field(default_factory=Counter)  # by arch key

    def layer(self, layer: Layer, module: torch.nn.Module, settings: LatencySettings) -> Measurement:
        if self.stop_after is not None and sum(self.layer_rounds.values()) == self.stop_after:
            raise Interrupted
        return self._timed(self.layer_rounds, layer.key, layer_ms(layer.key), settings)

    def network(self, genotype: Genotype, model: torch.nn.Module, settings: LatencySettings) -> Measurement:
        base = network_ms(genotype, settings.resolution) * self.skew.get(genotype.key, 1.0)
        return self._timed(self.network_rounds, genotype.key, base, settings)

    @staticmethod
    def _timed(rounds: Counter, key: str, base: float, settings: LatencySettings) -> Measurement:
        latency = base * ROUND_FACTORS[rounds[key] % len(ROUND_FACTORS)]
        rounds[key] += 1
        return Measurement(latency, SPREAD_MS, settings.repeats, LOAD_AVG, (latency,))
