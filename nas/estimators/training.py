"""Accuracy from short training on the proxy task (what MnasNet does on held-out ImageNet)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nas.data import ProxyData
from nas.estimators import Report
from nas.proxy import ProxySettings, train_proxy
from nas.threads import torch_threads
from search_spaces import Genotype


@dataclass(frozen=True)
class ProxyTraining:
    """Trains each network from scratch and reports every epoch's accuracy (as ``proxy.score``
    says), so a pruner can stop a hopeless one after its first epoch.

    One thread by default (``nas.threads``)."""

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
        with torch_threads(self.threads):
            return train_proxy(genotype, self.data, self.proxy, report)
