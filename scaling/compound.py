"""EfficientNet's compound scaling: depth alpha^phi, width beta^phi, resolution gamma^phi.

The rounding is timm's (``round_channels`` for widths, ``decode_arch_def``'s 'ceil' for
repeats), so B1..B7 scaled from ``efficientnet_b0`` are timm's ``efficientnet_b1``..``b7``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from search_spaces import Genotype, round_resolution, round_width, scale_repeats

FLOPS_TARGET = 2.0  # alpha * beta^2 * gamma^2: each phi step about doubles the FLOPs
MULTIPLIER_DECIMALS = 6  # alpha^phi & co. as a person would write them: 1.44, not 1.4399999999999997


@dataclass(frozen=True)
class Coefficients:
    """Per-step growth of depth (alpha), width (beta) and resolution (gamma), each >= 1."""

    alpha: float
    beta: float
    gamma: float

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not value >= 1.0:  # also refuses NaN
                raise ValueError(f"{name} must be >= 1 (compound scaling only grows a network), got {value:g}")

    @property
    def flops_factor(self) -> float:
        """How much one phi step multiplies the FLOPs: depth counts once, width and resolution twice."""
        return self.alpha * self.beta**2 * self.gamma**2

    def label(self) -> str:
        return f"{self.alpha:g},{self.beta:g},{self.gamma:g}"

    def at(self, phi: int, base_resolution: int) -> Member:
        """The multipliers of family member ``phi``; resolution rounded to a multiple of 8."""
        if phi < 0:
            raise ValueError(f"phi must be >= 0, got {phi}")
        resolution = base_resolution if phi == 0 else round_resolution(base_resolution * self.gamma**phi)
        return Member(phi, round(self.alpha**phi, MULTIPLIER_DECIMALS), round(self.beta**phi, MULTIPLIER_DECIMALS),
                      resolution)


EFFICIENTNET_COEFFICIENTS = Coefficients(1.2, 1.1, 1.15)  # the paper's grid-search result on B0


@dataclass(frozen=True)
class Member:
    """One network of a family: how much deeper and wider than the base, at which input size."""

    phi: int
    depth: float
    width: float
    resolution: int
    drop_rate: float | None = None  # the dropout a released family trains this member with


def scale_genotype(genotype: Genotype, *, depth: float, width: float) -> Genotype:
    """The base network ``depth`` times deeper and ``width`` times wider, rounded as timm does.

    Stem and head widths scale with the blocks (EfficientNet: stem ``round_chs_fn(32)``, head
    ``round_chs_fn(1280)``); timm's MobileNetV3 keeps its head. A ``fix_stem`` network
    (EfficientNet-Lite) keeps stem, head and the depth of its first and last stage, as timm's
    ``efficientnet_lite`` does.
    """
    if not (depth >= 1.0 and width >= 1.0):
        raise ValueError(f"depth and width multipliers must be >= 1, got {depth:g} and {width:g}")
    lite = genotype.fix_stem
    last = len(genotype.stages) - 1
    stages = []
    for index, stage in enumerate(genotype.stages):
        stage_depth = 1.0 if lite and index in (0, last) else depth
        repeats = scale_repeats([block.repeats for block in stage], stage_depth)
        stages.append(tuple(block.with_(repeats=r, out_chs=round_width(block.out_chs, width))
                            for block, r in zip(stage, repeats, strict=True)))
    scales_head = genotype.family == "efficientnet" and not lite and genotype.num_features > 0
    return replace(
        genotype, stages=tuple(stages),
        stem_size=genotype.stem_size if lite else round_width(genotype.stem_size, width),
        num_features=round_width(genotype.num_features, width) if scales_head else genotype.num_features,
    )


def scale(genotype: Genotype, member: Member) -> Genotype:
    return scale_genotype(genotype, depth=member.depth, width=member.width)
