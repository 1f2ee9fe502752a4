"""The two estimates a trial needs, behind small interfaces: how fast and how accurate.

A trial (``nas.runner.TrialRunner``) asks a ``LatencyEstimator`` for the network's latency on the
target device and an ``AccuracyEstimator`` for its accuracy; it never knows which kind it got.
New estimators (zero-cost proxies, a weight-sharing supernet, another device backend) plug in
here without touching the search loop: implement the protocol and add it to the chooser at the
CLI boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from search_spaces import Genotype

Report = Callable[[int, float], None]
"""``report(step, accuracy)``: an estimator's intermediate result. The trial records it and asks
the pruner; when the pruner says stop it raises ``optuna.TrialPruned``, which the estimator lets
pass (so a long estimate stops early)."""

LatencySource = Literal["measured", "lut"]


@dataclass(frozen=True)
class LatencyEstimate:
    """One network's latency on the target device, and where the number came from."""

    latency_ms: float
    source: LatencySource
    spread_ms: float | None = None  # interquartile range of the timed runs (measured only)
    load_avg: float | None = None  # the machine's 1-minute load when measured
    predicted_ms: float | None = None  # the device's latency table's prediction, when it covers the network


class LatencyEstimator(Protocol):
    """Latency of a network on one device (measured there, or predicted from its table)."""

    @property
    def device(self) -> dict[str, Any]:
        """The device fingerprint every estimate is for (stored with each trial)."""
        ...

    def latency(self, genotype: Genotype) -> LatencyEstimate: ...


class AccuracyEstimator(Protocol):
    """An estimate of a network's accuracy after full training: higher is better.

    Trained estimators return an accuracy on held-out images in [0, 1]; cheaper ones (zero-cost proxies, a
    supernet) return their own score mapped into [0, 1] so that the MnasNet reward stays defined.
    """

    @property
    def name(self) -> str:
        """Stored as each trial's ``estimator``: how its accuracy was obtained."""
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """Stored with the study: a resumed study must be estimated the same way."""
        ...

    def accuracy(self, genotype: Genotype, report: Report) -> float: ...
