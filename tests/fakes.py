"""Deterministic estimators for tests: known latencies and accuracies, no timing, no training.

They are real implementations of the two estimator protocols (``nas.estimators``), not mocks:
the trial runner, the search and the grid run them exactly as they run the real ones. Values
come from the network itself (its depth and a hash of its canonical key), so different
networks get different, reproducible numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.estimators import LatencyEstimate, Report
from search_spaces import Genotype

FAKE_DEVICE = {"cpu": "fake", "threads": 1, "backend": "fake", "resolution": 64, "batch": 1, "allocator": "kept"}


def _unit(genotype: Genotype, salt: str) -> float:
    """A number in [0, 1) fixed by the network's key."""
    return int(hashlib.sha1(f"{salt}:{genotype.key}".encode()).hexdigest()[:8], 16) / 2**32


@dataclass(frozen=True)
class BlockLatency:
    """About 1 ms per block: deeper networks are slower, as on a device."""

    @staticmethod
    def value(genotype: Genotype) -> float:
        return 0.5 + genotype.depth + _unit(genotype, "latency")

    @property
    def device(self) -> dict[str, Any]:
        return FAKE_DEVICE

    def latency(self, genotype: Genotype) -> LatencyEstimate:
        return LatencyEstimate(self.value(genotype), "measured", spread_ms=0.0, load_avg=0.0)


@dataclass(frozen=True)
class WidthAccuracy:
    """A known accuracy per network, reported over ``steps`` steps (the last is final);
    ``fail_with`` raises instead, as a diverging or interrupted estimate would."""

    steps: int = 3
    fail_with: BaseException | None = None
    data: str = "digits"  # the data set the study records (reports compare baselines of the same one)

    @property
    def name(self) -> str:
        return "fake"

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"name": self.name, "data": self.data, "steps": self.steps}

    @staticmethod
    def final(genotype: Genotype) -> float:
        return 0.5 + 0.4 * _unit(genotype, "accuracy")

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        if self.fail_with is not None:
            raise self.fail_with
        final = self.final(genotype)
        for step in range(self.steps):
            report(step, final * (step + 1) / self.steps)
        return final


@dataclass(frozen=True)
class NanAccuracy(WidthAccuracy):
    """An estimate that ends in NaN without raising (a diverged score), after reporting steps."""

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        super().accuracy(genotype, report)
        return float("nan")
