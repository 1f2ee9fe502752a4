"""Training inside a refinement: the start from scratch, each proposal briefly, the result longer.

Every network trains on the proxy task (``nas.data``) at the proxy resolution, built as the proxy
builds it (``nas.proxy.proxy_genotype``: the earliest strides set to 1 on tiny images), with the
search's optimizer (timm's AdamW, cosine schedule). A proposal inherits its parent's weights
(``nas.refine.inherit``); every run is seeded, so a run repeated after an interruption gives the
same weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.checkpoint import load_checkpoint, prefixed, save_checkpoint
from nas.data import ProxyData
from nas.estimators import Report
from nas.proxy import StepHook, TuneSettings, proxy_genotype, train_steps
from nas.refine.inherit import inherit
from nas.threads import torch_threads
from search_spaces import Genotype, build_model

@dataclass(frozen=True)
class Tuning:
    """The accuracy estimator of a refinement's trials: the network inherits ``parent``'s weights
    (or starts from a seeded initialisation when there is none), trains ``tune.steps`` steps
    and is scored on the validation split. The trained networks are kept in ``models`` (by
    genotype key) for the iteration to pick from."""

    data: ProxyData
    tune: TuneSettings
    proxy_resolution: int
    parent: torch.nn.Module | None = None
    phase: str = "short-tune"  # "pretrain", "short-tune", "long-tune": stored with each trial's estimator
    threads: int = 1
    on_step: StepHook | None = None
    models: dict[str, torch.nn.Module] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"netadapt-{self.phase}"

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"name": self.name, "data": self.data.name, "resolution": self.proxy_resolution, **asdict(self.tune)}

    def network(self, genotype: Genotype) -> torch.nn.Module:
        """``genotype`` as the proxy trains it, with the parent's weights when there is a parent."""
        proxy = proxy_genotype(genotype, self.proxy_resolution)
        if self.parent is None:
            torch.manual_seed(self.tune.seed)
            return build_model(proxy, num_classes=self.data.num_classes, in_chans=self.data.in_chans)
        return inherit(self.parent, proxy, num_classes=self.data.num_classes, in_chans=self.data.in_chans)

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        with torch_threads(self.threads):
            model = self.network(genotype)
            accuracy = train_steps(model, self.data, self.tune, self.on_step)
        self.models[genotype.key] = model.eval()
        report(self.tune.steps, accuracy)
        return accuracy


@dataclass(frozen=True)
class Kept:
    """The network an iteration kept: the next iteration's parent."""

    iteration: int
    trial: int  # its trial in the refinement's study
    genotype: Genotype
    latency_ms: float  # its parent's measured latency less its savings; measured once confirmed (``loop``)
    accuracy: float
    model: torch.nn.Module

    def save(self, folder: Path) -> Path:
        """``iteration-N.safetensors``: weights and what the next iteration needs, written atomically."""
        state = {"iteration": self.iteration, "trial": self.trial, "architecture": self.genotype.to_dict(),
                 "latency_ms": self.latency_ms, "accuracy": self.accuracy}
        return save_checkpoint(folder / f"iteration-{self.iteration}.safetensors",
                               {f"model.{k}": v for k, v in self.model.state_dict().items()}, state)

    @classmethod
    def load(cls, path: Path, data: ProxyData, proxy_resolution: int) -> Kept:
        tensors, state = load_checkpoint(path)
        genotype = Genotype.from_dict(state["architecture"])
        model = build_model(proxy_genotype(genotype, proxy_resolution), num_classes=data.num_classes, in_chans=data.in_chans)
        model.load_state_dict(prefixed(tensors, "model"))
        return cls(state["iteration"], state["trial"], genotype, state["latency_ms"], state["accuracy"], model.eval())


def last_kept(folder: Path) -> Path | None:
    """The newest stored iteration's checkpoint in ``folder``, if any."""
    found = {int(p.stem.split("-")[1]): p for p in folder.glob("iteration-*.safetensors") if p.stem.split("-")[1].isdigit()}
    return found[max(found)] if found else None


def ratio_score(accuracy: float, latency_ms: float, parent: Kept) -> float:
    """MobileNetV3's rule: accuracy change per millisecond saved (the least loss per ms wins)."""
    return (accuracy - parent.accuracy) / max(abs(parent.latency_ms - latency_ms), 1e-9)

