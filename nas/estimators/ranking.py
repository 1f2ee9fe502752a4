"""Judging an accuracy estimator: how it ranks the reference's networks, how much of its spread is
signal, and what it costs.

- Kendall tau and Spearman rho of its scores (seed 0) against the reference's long-training
  accuracies (seed 0);
- signal-to-noise: the spread of its scores across networks over the spread of one network's
  score across two seeds (on the networks the reference repeated); a deterministic estimator
  (params, MACs) has no noise and no SNR;
- seconds per architecture (median), and tau per second.
The reference's own agreement between its two seeds is the ceiling of any estimator's tau.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from scipy.stats import kendalltau, spearmanr

from nas.errors import UsageError
from nas.estimators import AccuracyEstimator
from search_spaces import Genotype
from storage import Store
from storage import reference as reference_store


@dataclass(frozen=True)
class Reference:
    """A stored reference: each network's long-training accuracy (seed 0) and its repeats."""

    name: str
    networks: dict[str, Genotype]  # label -> network
    accuracy: dict[str, float]  # label -> seed-0 accuracy (failed trainings left out)
    repeated: dict[str, tuple[float, float]]  # label -> (seed 0, seed 1) accuracy
    settings: dict

    @property
    def self_tau(self) -> float | None:
        """Kendall tau between the reference's two seeds: the ceiling of any estimator's."""
        if len(self.repeated) < 3:
            return None
        first, second = zip(*self.repeated.values(), strict=True)
        return float(kendalltau(first, second).statistic)

    def restricted(self, labels: set[str]) -> Reference:
        """The reference on ``labels`` only (the networks an estimator can score)."""
        return Reference(self.name, {k: v for k, v in self.networks.items() if k in labels},
                         {k: v for k, v in self.accuracy.items() if k in labels},
                         {k: v for k, v in self.repeated.items() if k in labels}, self.settings)

    @property
    def seed_noise(self) -> float | None:
        """Mean absolute accuracy difference between the two seeds of one network."""
        if not self.repeated:
            return None
        return statistics.fmean(abs(a - b) for a, b in self.repeated.values())


def load_reference(store: Store, name: str | None) -> Reference:
    """The reference ``name``, or the only one stored."""
    names = reference_store.references(store)
    if name is None:
        if len(names) != 1:
            raise UsageError(f"{len(names)} references in {store}; pick one with --reference"
                             + (f": {', '.join(names)}" if names else "; build one with `nas estimators reference`"))
        name = names[0]
    rows = reference_store.results(store, name)
    if not rows:
        raise UsageError(f"no reference named {name!r} in {store}; references there: {', '.join(names) or 'none'}")
    networks = {r.label: Genotype.from_dict(r.architecture) for r in rows}
    first = {r.label: r.accuracy for r in rows if r.seed == 0 and r.accuracy is not None}
    second = {r.label: r.accuracy for r in rows if r.seed == 1 and r.accuracy is not None}
    return Reference(name, networks, first, {k: (first[k], v) for k, v in second.items() if k in first},
                     {k: v for k, v in rows[0].settings.items() if k != "fail_reason"})


@dataclass(frozen=True)
class Ranking:
    estimator: str
    kendall_tau: float
    spearman: float
    snr: float | None
    seconds_per_arch: float
    scores: dict[str, list[float]]  # label -> score per seed

    @property
    def tau_per_second(self) -> float:
        return self.kendall_tau / self.seconds_per_arch if self.seconds_per_arch > 0 else math.inf


def _score(estimator: AccuracyEstimator) -> Callable[[Genotype], float]:
    """The estimator's own score where it has one (zero-cost, size), else its accuracy estimate."""
    score = getattr(estimator, "score", None)
    return score if callable(score) else (lambda genotype: estimator.accuracy(genotype, lambda step, value: None))


def held(reference: Reference, estimator: AccuracyEstimator) -> Reference:
    """The reference on the networks ``estimator`` can score: a supernet holds only its space's
    (the papers' seed networks lie outside it); other estimators score every network."""
    holds = getattr(estimator, "holds", None)
    if not callable(holds):
        return reference
    return reference.restricted({label for label, genotype in reference.networks.items() if holds(genotype)})


def rank_estimator(reference: Reference, label: str, make: Callable[[int], AccuracyEstimator],
                   on_network: Callable[[], None] | None = None) -> Ranking:
    """Score every reference network the estimator can score with ``make(0)`` and the repeated
    ones with ``make(1)``."""
    return rank_side_by_side(reference, {label: make}, on_network)[label]


def rank_side_by_side(reference: Reference, makers: dict[str, Callable[[int], AccuracyEstimator]],
                      on_network: Callable[[], None] | None = None) -> dict[str, Ranking]:
    """``rank_estimator`` for several estimators on the networks all of them can score, taking
    turns network by network (who goes first rotates): a slow spell of a shared machine falls on
    all of them alike, so their seconds compare as one run's."""
    labels = list(makers)
    firsts = {label: make(0) for label, make in makers.items()}
    for estimator in firsts.values():
        reference = held(reference, estimator)
    if len(reference.accuracy) < 3:
        raise UsageError(f"reference {reference.name!r} has {len(reference.accuracy)} trained networks {', '.join(labels)} "
                         "can score; ranking needs at least 3: build more with `nas estimators reference`")
    scored: dict[str, dict[str, list[float]]] = {label: {} for label in labels}
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    turn = 0
    for seed, names in ((0, list(reference.accuracy)), (1, list(reference.repeated))):
        if not names:
            continue
        scores = {label: _score(firsts[label] if seed == 0 else makers[label](seed)) for label in labels}
        for score in scores.values():
            score(reference.networks[names[0]])  # warm-up: one-off set-up (data, calibration) is not per-network cost
        for name in names:
            for label in labels[turn % len(labels):] + labels[:turn % len(labels)]:
                start = time.perf_counter()
                scored[label].setdefault(name, []).append(scores[label](reference.networks[name]))
                seconds[label].append(time.perf_counter() - start)
            turn += 1
            if on_network is not None:
                on_network()
    return {label: _ranking(reference, label, scored[label], seconds[label]) for label in labels}


def _ranking(reference: Reference, label: str, scored: dict[str, list[float]], seconds: list[float]) -> Ranking:
    names = list(reference.accuracy)
    ours = [scored[name][0] for name in names]
    truth = [reference.accuracy[name] for name in names]
    noise = [abs(s[0] - s[1]) / math.sqrt(2) for s in scored.values() if len(s) == 2]
    spread = statistics.pstdev(ours)
    snr = spread / statistics.fmean(noise) if noise and statistics.fmean(noise) > 0 else None
    return Ranking(label, float(kendalltau(ours, truth).statistic), float(spearmanr(ours, truth).statistic), snr,
                   statistics.median(seconds), scored)


def store_ranking(store: Store, reference: Reference, ranking: Ranking, settings: dict) -> None:
    reference_store.save_ranking(store, reference.name, ranking.estimator, kendall_tau=ranking.kendall_tau,
                                 spearman=ranking.spearman, snr=ranking.snr, seconds_per_arch=ranking.seconds_per_arch,
                                 scores=ranking.scores, settings=settings)
