"""Accuracy from short training on the proxy task (what MnasNet does on held-out ImageNet)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nas.data import ProxyData
from nas.estimators import Report
from nas.proxy import ProxySettings, train_proxy
from search_spaces import Genotype


@dataclass(frozen=True)
class ProxyTraining:
    """Trains each network from scratch and reports every epoch's validation accuracy, so a
    pruner can stop a hopeless one after its first epoch.

    One thread by default: on a shared 2-core machine two threads wait on each other whenever
    anything else runs (measured here: 10-40x slower steps under load), and one thread leaves the
    other core to the latency measurement or a second worker."""

    data: ProxyData
    proxy: ProxySettings
    threads: int = 1

    @property
    def name(self) -> str:
        return "train"

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"name": self.name, "data": self.data.name, **asdict(self.proxy)}

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return train_proxy(genotype, self.data, self.proxy, report)
        finally:
            torch.set_num_threads(previous)
