"""MnasNet's factorized hierarchical search space, sampled through Optuna's ``suggest_*``.

Each stage of a skeleton gets its own op, kernel, SE ratio, activation, skip, width and depth;
all blocks of a stage share them (MnasNet, section 4.1). Parameter names are stable
(``s{i}_{choice}``) so that studies stay comparable and resumable across versions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from search_spaces.blocks import Block, decode
from search_spaces.genotype import Genotype
from search_spaces.seeds import MOBILENETV2_SKELETON


class Suggester(Protocol):
    """The part of ``optuna.Trial`` a space needs (kept structural: we import no Optuna here)."""

    def suggest_categorical(self, name: str, choices: Sequence) -> object: ...


# op name -> (block type, expansion ratio)
# (``fmb``: EfficientNetV2's fused MBConv, timm's edge residual: a k x k expansion conv, no depthwise)
OPS = {"ds": ("ds", None), "mb1": ("ir", 1.0), "mb3": ("ir", 3.0), "mb6": ("ir", 6.0), "conv": ("cn", None),
       "fmb1": ("er", 1.0), "fmb4": ("er", 4.0)}


@dataclass(frozen=True)
class FactorizedSpace:
    """Per-stage choices over a fixed skeleton of (repeats, stride, channels)."""

    name: str
    description: str
    skeleton: tuple[tuple[int, int, int], ...]  # (repeats, stride, out channels) per stage
    ops: tuple[str, ...]
    kernels: tuple[int, ...]
    se_ratios: tuple[float, ...]
    acts: tuple[str, ...]
    skips: tuple[bool, ...]  # True = identity residual where shapes allow, False = none
    widths: tuple[float, ...]
    layer_deltas: tuple[int, ...]
    stem_size: int
    num_features: int
    reference_ops: tuple[str, ...] | None = None  # the skeleton network's own op per stage

    def choices(self, stage: int) -> dict[str, tuple]:
        """Each choice of stage ``stage`` (``s{stage}_{choice}`` in Optuna) and its options."""
        return {
            "op": self.ops, "kernel": self.kernels, "se": self.se_ratios, "act": self.acts,
            "skip": self.skips, "width": self.widths, "layers": self._layer_choices(stage),
        }

    def _layer_choices(self, stage: int) -> tuple[int, ...]:
        """Depth deltas that leave at least one block (duplicates would skew the sampler)."""
        repeats = self.skeleton[stage][0]
        return tuple(d for d in self.layer_deltas if repeats + d >= 1)

    @property
    def size(self) -> int:
        """How many distinct genotypes the space holds."""
        return math.prod(
            math.prod(len(c) for c in self.choices(i).values()) for i in range(len(self.skeleton))
        )

    def reference_params(self) -> dict[str, object] | None:
        """Optuna parameters that sample the skeleton network itself: a search's warm start,
        so that it begins from the hand-designed network it is meant to beat."""
        if self.reference_ops is None:
            return None
        params: dict[str, object] = {}
        for i, op in enumerate(self.reference_ops):
            choice = {"op": op, "kernel": 3, "se": 0.0, "act": "relu", "skip": True, "width": 1.0, "layers": 0}
            params.update({f"s{i}_{k}": v for k, v in choice.items()})
        return params

    def covering_genotypes(self) -> Iterator[Genotype]:
        """Networks that together hold every block the space can produce, in every context it
        can occur in: each stage's every choice after each width of the stage before (the only
        choice of another stage that changes a block's input). A latency table measures these
        blocks once instead of whole networks from a space of ~10^20."""
        base = {f"s{i}_{k}": v[0] for i in range(len(self.skeleton)) for k, v in self.choices(i).items()}
        for i in range(len(self.skeleton)):
            choices = self.choices(i)
            before = self.widths if i > 0 else (None,)
            for picks in itertools.product(*choices.values()):
                for width_before in before:
                    params = {**base, **{f"s{i}_{k}": v for k, v in zip(choices, picks, strict=True)}}
                    if width_before is not None:
                        params[f"s{i - 1}_width"] = width_before
                    yield self.sample(_Fixed(params))

    def sample(self, trial: Suggester) -> Genotype:
        stages = []
        for i in range(len(self.skeleton)):
            pick = {k: trial.suggest_categorical(f"s{i}_{k}", list(v)) for k, v in self.choices(i).items()}
            stages.append((self._block(i, pick),))
        return Genotype(stages=tuple(stages), stem_size=self.stem_size, num_features=self.num_features,
                        act="relu")

    def params_of(self, genotype: Genotype) -> dict[str, object] | None:
        """The Optuna parameters that sample ``genotype``; ``None`` when it is not a network of
        this space (a paper's network often is not: other activations, ops or stage layouts)."""
        if len(genotype.stages) != len(self.skeleton) or any(len(stage) != 1 for stage in genotype.stages):
            return None
        params: dict[str, object] = {}
        for i, (wanted,) in enumerate(genotype.stages):
            choices = self.choices(i)
            picks = (dict(zip(choices, p, strict=True)) for p in itertools.product(*choices.values()))
            pick = next((p for p in picks if self._block(i, p) == wanted), None)
            if pick is None:
                return None
            params.update({f"s{i}_{k}": v for k, v in pick.items()})
        return params if self.sample(_Fixed(params)) == genotype else None

    def _block(self, stage: int, pick: dict[str, object]) -> Block:
        """The block string stage ``stage`` gets for one option of each of its choices."""
        from search_spaces.timm_adapter import round_width  # timm's rounding: torch loads only when sampling

        repeats, stride, channels = self.skeleton[stage]
        block_type, exp_ratio = OPS[pick["op"]]  # type: ignore[index]
        block = Block(
            type=block_type,
            repeats=repeats + pick["layers"],  # type: ignore[operator]
            kernel=pick["kernel"],  # type: ignore[arg-type]
            stride=stride,
            out_chs=round_width(channels, pick["width"]),  # type: ignore[arg-type]
            exp_ratio=exp_ratio,
            se_ratio=pick["se"] or None,  # type: ignore[arg-type]
            act=pick["act"],  # type: ignore[arg-type]
            skip=None if pick["skip"] else False,
        )
        if block.type == "cn" and block.se_ratio is not None:
            block = block.with_(se_ratio=None)  # timm's ConvBnAct has no SE
        return block


class _Fixed:
    """A ``Suggester`` that answers from a dict of parameters."""

    def __init__(self, params: dict[str, object]) -> None:
        self.params = params

    def suggest_categorical(self, name: str, choices: Sequence) -> object:
        return self.params[name]


def _skeleton(arch_def: Sequence[Sequence[str]]) -> tuple[tuple[int, int, int], ...]:
    blocks = [decode(stage[0]) for stage in arch_def]
    return tuple((b.repeats, b.stride, b.out_chs) for b in blocks)


_MBV2_OPS = ("ds",) + ("mb6",) * 6
_MNAS_CHOICES = dict(
    kernels=(3, 5), se_ratios=(0.0, 0.25), acts=("relu", "hard_swish"), skips=(True, False),
    widths=(0.75, 1.0, 1.25), layer_deltas=(-1, 0, 1),
)

SPACES: dict[str, FactorizedSpace] = {
    space.name: space
    for space in (
        FactorizedSpace(
            name="mbconv",
            description="MnasNet space on the 7-stage MobileNetV2 skeleton",
            skeleton=_skeleton(MOBILENETV2_SKELETON),
            ops=("ds", "mb1", "mb3", "mb6"),
            stem_size=32, num_features=1280, reference_ops=_MBV2_OPS, **_MNAS_CHOICES,  # type: ignore[arg-type]
        ),
        FactorizedSpace(
            name="mbconv-conv",
            description="mbconv plus regular 3x3/5x5 convolution as an op",
            skeleton=_skeleton(MOBILENETV2_SKELETON),
            ops=("ds", "mb1", "mb3", "mb6", "conv"),
            stem_size=32, num_features=1280, reference_ops=_MBV2_OPS, **_MNAS_CHOICES,  # type: ignore[arg-type]
        ),
        FactorizedSpace(
            name="mbconv-fused",
            description="mbconv plus EfficientNetV2's fused MBConv (expansion 1 or 4) as ops",
            skeleton=_skeleton(MOBILENETV2_SKELETON),
            ops=("ds", "mb1", "mb3", "mb6", "fmb1", "fmb4"),
            stem_size=32, num_features=1280, reference_ops=_MBV2_OPS, **_MNAS_CHOICES,  # type: ignore[arg-type]
        ),
        FactorizedSpace(  # bench/supernet_sharing.py: op and skip choices do not share weights, the rest do
            name="mbconv-shared",
            description="mbconv without the choices a weight-sharing supernet cannot share: MBConv 3 or 6, always "
                        "residual (Once-for-All's kind of space)",
            skeleton=_skeleton(MOBILENETV2_SKELETON),
            ops=("mb3", "mb6"), stem_size=32, num_features=1280,
            **{**_MNAS_CHOICES, "skips": (True,)},  # type: ignore[arg-type]
        ),
        FactorizedSpace(
            name="tiny",
            description="3 narrow stages, for tests and smoke runs",
            skeleton=((1, 1, 8), (1, 2, 16), (1, 2, 24)),
            ops=("ds", "mb3"),
            kernels=(3, 5), se_ratios=(0.0, 0.25), acts=("relu", "hard_swish"), skips=(True,),
            widths=(1.0,), layer_deltas=(0, 1),
            stem_size=8, num_features=64, reference_ops=("ds", "mb3", "mb3"),
        ),
    )
}


def get_space(name: str) -> FactorizedSpace:
    """Look a space up by name; the error lists the valid ones."""
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown space {name!r}; valid spaces: {', '.join(SPACES)}") from None
