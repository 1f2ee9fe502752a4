"""The architecture value: a whole network as timm ``arch_def`` stages plus its stem and head."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from search_spaces import blocks
from search_spaces.blocks import Block

FAMILIES = {
    "efficientnet": "timm EfficientNet: conv head + BN before pooling, SE gated by sigmoid",
    "mobilenetv3": "timm MobileNetV3: pooling before a biased conv head, SE gated by hard-sigmoid",
}
NETWORK_ACTIVATIONS = ("relu", "relu6", "hard_swish", "swish", "mish")
STEM_STRIDE = 2  # both timm families hard-wire a stride-2 stem


@dataclass(frozen=True)
class Genotype:
    """A frozen, hashable network description that timm builds.

    ``stages`` hold absolute channel counts (multiplier 1.0): the strings are the network.
    """

    stages: tuple[tuple[Block, ...], ...]
    stem_size: int = 32
    num_features: int = 1280  # width of the 1x1 conv head; 0 means no head conv
    family: str = "efficientnet"
    act: str = "relu"  # the network's default activation (stem, head, blocks without 'n')
    fix_stem: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; expected one of {', '.join(FAMILIES)}")
        if not isinstance(self.act, str) or self.act not in NETWORK_ACTIVATIONS:
            raise ValueError(f"unknown activation {self.act!r}; expected one of {', '.join(NETWORK_ACTIVATIONS)}")
        if not self.stages or any(not stage for stage in self.stages):
            raise ValueError("a genotype needs at least one stage and no empty stage")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.stem_size, self.num_features)) \
                or self.stem_size < 1 or self.num_features < 0:
            raise ValueError(f"stem_size must be an integer >= 1 and num_features one >= 0, got "
                             f"{self.stem_size!r} and {self.num_features!r}")

    # --- timm's arch_def strings -------------------------------------------------------------
    @classmethod
    def from_arch_def(cls, arch_def: Sequence[Sequence[str]], **network: Any) -> Genotype:
        """Decode timm ``arch_def`` (a list of stages, each a list of block strings)."""
        if not isinstance(arch_def, (list, tuple)) or not all(
            isinstance(stage, (list, tuple)) for stage in arch_def
        ):
            raise ValueError("arch_def must be a list of stages, each a list of block strings")
        stages = tuple(tuple(blocks.decode(s) for s in stage) for stage in arch_def)
        return cls(stages=stages, **network)

    @property
    def arch_def(self) -> list[list[str]]:
        return [[blocks.encode(b) for b in stage] for stage in self.stages]

    def network(self) -> dict[str, Any]:
        """Everything but the block strings (the storage contract keeps it beside ``arch_def``)."""
        return {"stem_size": self.stem_size, "num_features": self.num_features,
                "family": self.family, "act": self.act, "fix_stem": self.fix_stem}

    # --- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"arch_def": self.arch_def, **self.network()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        if not isinstance(data, dict) or "arch_def" not in data:
            raise ValueError("an architecture needs an 'arch_def' key (list of lists of block strings)")
        known = {"stem_size", "num_features", "family", "act", "fix_stem"}
        return cls.from_arch_def(data["arch_def"], **{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        return cls.from_dict(json.loads(text))

    @cached_property
    def key(self) -> str:
        """A short stable digest, to spot the same architecture across trials and studies."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:12]

    # --- derived networks --------------------------------------------------------------------
    @property
    def total_stride(self) -> int:
        stride = STEM_STRIDE
        for stage in self.stages:
            for block in stage:
                stride *= block.stride
        return stride

    def with_max_stride(self, max_stride: int) -> Genotype:
        """The same blocks with the earliest strides set to 1 until the total stride fits.

        This is how CIFAR variants keep an ImageNet network meaningful on tiny images: every
        searched block stays, only where the resolution drops changes.
        """
        if max_stride < STEM_STRIDE:
            raise ValueError(f"max_stride must be >= {STEM_STRIDE} (the stem strides by {STEM_STRIDE})")
        excess = self.total_stride // max_stride if self.total_stride > max_stride else 1
        stages = []
        for stage in self.stages:
            new_stage = []
            for block in stage:
                if excess > 1 and block.stride > 1:
                    excess //= block.stride
                    block = block.with_(stride=1)
                new_stage.append(block)
            stages.append(tuple(new_stage))
        return replace(self, stages=tuple(stages))

    @property
    def depth(self) -> int:
        return sum(b.repeats for stage in self.stages for b in stage)
