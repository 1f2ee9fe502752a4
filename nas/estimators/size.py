"""Size as an accuracy estimate: the baselines any accuracy estimator has to beat.

Bigger networks are more accurate, roughly; a proxy that ranks architectures no better than
their parameter or MAC count adds nothing. Both are counted for the real network at the search's
``resolution`` (as each trial stores them), on the meta device, so a score costs milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import torch

from nas.errors import UsageError
from nas.estimators import Report
from nas.estimators.zero_cost import LogisticMap, seed_networks_map
from nas.metrics import count_macs, count_params
from search_spaces import Genotype, build_model

__all__ = ["SIZE_METRICS", "SizeEstimator", "SizeSettings"]


def _params(genotype: Genotype, resolution: int, num_classes: int) -> int:
    with torch.device("meta"):
        return count_params(build_model(genotype, num_classes=num_classes))


def _macs(genotype: Genotype, resolution: int, num_classes: int) -> int:
    return count_macs(genotype, resolution, num_classes)


SIZE_METRICS: dict[str, Callable[[Genotype, int, int], int]] = {"params": _params, "macs": _macs}


@dataclass(frozen=True)
class SizeSettings:
    metric: str = "params"
    resolution: int = 224
    num_classes: int = 1000

    def __post_init__(self) -> None:
        if self.metric not in SIZE_METRICS:
            raise UsageError(f"unknown size metric {self.metric!r}; known: {', '.join(SIZE_METRICS)}")
        if not 8 <= self.resolution <= 1024:
            raise UsageError(f"size resolution must be between 8 and 1024 pixels, got {self.resolution}")
        if self.num_classes < 2:
            raise UsageError(f"size num_classes must be >= 2, got {self.num_classes}")


class SizeEstimator:
    """An ``AccuracyEstimator`` whose score is a parameter or MAC count; ``accuracy`` is the
    logistic of its standardised log, as for the zero-cost proxies."""

    def __init__(self, settings: SizeSettings) -> None:
        self._settings = settings

    @property
    def name(self) -> str:
        return self._settings.metric

    @property
    def settings(self) -> Mapping[str, Any]:
        return asdict(self._settings)

    def score(self, genotype: Genotype) -> float:
        s = self._settings
        return float(SIZE_METRICS[s.metric](genotype, s.resolution, s.num_classes))

    def _log_score(self, genotype: Genotype) -> float:
        return math.log(self.score(genotype))

    @cached_property
    def _map(self) -> LogisticMap:
        return seed_networks_map(self._log_score)

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        """The mapped score; ``report`` is not called (nothing to stop early)."""
        return self._map(self._log_score(genotype))
