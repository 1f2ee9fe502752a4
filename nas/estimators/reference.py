"""The reference an accuracy estimator is judged against: sampled networks trained long.

Short proxy training favours networks that learn fast over networks that end up accurate, so an
estimator is only as good as its agreement with *long* training. The reference trains the space's
seed networks and ``samples`` random networks with a budget several times the search proxy's, on
MNIST at a resolution where the last feature map keeps spatial extent, each row stored as it
finishes (a killed build resumes). A second training seed on ``repeats`` networks measures the
reference's own noise: no estimator can agree with the reference better than it agrees with itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.estimators.training import ProxyTraining
from nas.latency.layers import random_networks, space_named
from nas.proxy import ProxySettings
from nas.study import fail_reason
from search_spaces import SEED_NAMES, Genotype, seed_architecture
from storage import Store
from storage import reference as reference_store


@dataclass(frozen=True)
class ReferenceConfig:
    space: str = "mbconv"
    samples: int = 30  # random networks of the space, besides the eight seed networks
    data: str = "mnist"
    proxy: ProxySettings = field(default_factory=lambda: ProxySettings(epochs=4, batch_size=64, resolution=16))
    repeats: int = 6  # networks trained with a second seed: the reference's own noise
    sample_seed: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        space_named(self.space)
        if self.samples < 2:
            raise UsageError(f"--samples must be >= 2, got {self.samples}")
        if not 0 <= self.repeats <= self.samples + len(SEED_NAMES):
            raise UsageError(f"--repeats must be between 0 and the number of networks, got {self.repeats}")

    @property
    def settings(self) -> dict[str, Any]:
        """The training recipe stored with every row of the reference."""
        return {"space": self.space, "data": self.data, **asdict(self.proxy)}

    @property
    def reference_name(self) -> str:
        p = self.proxy
        return self.name or f"{self.space}-{self.data}-{p.resolution}px-{p.epochs}ep-{self.samples}"


def reference_networks(config: ReferenceConfig) -> list[tuple[str, Genotype]]:
    """(label, network): the seed networks, then the sampled ones (fixed by ``sample_seed``)."""
    seeds = [(name, seed_architecture(name)) for name in SEED_NAMES]
    sampled = random_networks(space_named(config.space), config.samples, config.sample_seed,
                              exclude=[g.key for _, g in seeds])
    return seeds + [(f"sample-{i}", genotype) for i, genotype in enumerate(sampled)]


def planned_runs(config: ReferenceConfig) -> list[tuple[str, Genotype, int]]:
    """(label, network, training seed): every network with seed 0, then ``repeats`` of them again
    with seed 1, spread over seeds and samples."""
    networks = reference_networks(config)
    step = max(1, len(networks) // max(1, config.repeats))
    again = networks[::step][:config.repeats]
    return [(label, g, 0) for label, g in networks] + [(label, g, 1) for label, g in again]


def build_reference(config: ReferenceConfig, store: Store,
                    on_result: Callable[[str, int, float | None, float], None] | None = None) -> str:
    """Train every planned (network, seed) not stored yet; returns the reference's name.
    ``on_result(label, seed, accuracy, seconds)`` hears each one (accuracy None: it failed)."""
    name = config.reference_name
    done = {(r.label, r.seed) for r in reference_store.results(store, name)}
    settings = config.settings
    data = load_proxy_data(config.data, config.proxy.resolution)
    for label, genotype, seed in planned_runs(config):
        if (label, seed) in done:
            continue
        start = time.perf_counter()
        trainer = ProxyTraining(data, ProxySettings(**{**asdict(config.proxy), "seed": seed}))
        try:
            accuracy, why = trainer.accuracy(genotype, lambda step, value: None), None
        except Exception as err:  # a diverging network is a result too: stored, and the build goes on
            accuracy, why = None, fail_reason(err)
        seconds = time.perf_counter() - start
        reference_store.add_result(store, name, label, seed, architecture=genotype.to_dict(), accuracy=accuracy,
                                   train_s=seconds, settings={**settings, "fail_reason": why})
        if on_result is not None:
            on_result(label, seed, accuracy, seconds)
    return name
