"""The hand-designed and searched networks of the papers, as genotypes.

Each ``arch_def`` is copied from timm's generator of the same name, so building it gives exactly
the parameter count of ``timm.create_model(name)`` (the tests check all of them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from search_spaces.genotype import Genotype

_MBV2_SKELETON = [  # MobileNetV2, the skeleton MnasNet searches on
    ["ds_r1_k3_s1_c16"],
    ["ir_r2_k3_s2_e6_c24"],
    ["ir_r3_k3_s2_e6_c32"],
    ["ir_r4_k3_s2_e6_c64"],
    ["ir_r3_k3_s1_e6_c96"],
    ["ir_r3_k3_s2_e6_c160"],
    ["ir_r1_k3_s1_e6_c320"],
]

_SEEDS: dict[str, Genotype] = {
    "mobilenetv1_100": Genotype.from_arch_def(
        [["dsa_r1_k3_s1_c64"], ["dsa_r2_k3_s2_c128"], ["dsa_r2_k3_s2_c256"],
         ["dsa_r6_k3_s2_c512"], ["dsa_r2_k3_s2_c1024"]],
        stem_size=32, num_features=0, act="relu6"),
    "mobilenetv2_100": Genotype.from_arch_def(_MBV2_SKELETON, stem_size=32, num_features=1280, act="relu6"),
    "mnasnet_100": Genotype.from_arch_def(  # MnasNet-B1
        [["ds_r1_k3_s1_c16_noskip"], ["ir_r3_k3_s2_e3_c24"], ["ir_r3_k5_s2_e3_c40"],
         ["ir_r3_k5_s2_e6_c80"], ["ir_r2_k3_s1_e6_c96"], ["ir_r4_k5_s2_e6_c192"],
         ["ir_r1_k3_s1_e6_c320_noskip"]],
        stem_size=32, num_features=1280, act="relu"),
    "semnasnet_100": Genotype.from_arch_def(  # MnasNet-A1
        [["ds_r1_k3_s1_e1_c16_noskip"], ["ir_r2_k3_s2_e6_c24"], ["ir_r3_k5_s2_e3_c40_se0.25"],
         ["ir_r4_k3_s2_e6_c80"], ["ir_r2_k3_s1_e6_c112_se0.25"], ["ir_r3_k5_s2_e6_c160_se0.25"],
         ["ir_r1_k3_s1_e6_c320"]],
        stem_size=32, num_features=1280, act="relu"),
    "mobilenetv3_large_100": Genotype.from_arch_def(
        [["ds_r1_k3_s1_e1_c16_nre"], ["ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"],
         ["ir_r3_k5_s2_e3_c40_se0.25_nre"],
         ["ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"],
         ["ir_r2_k3_s1_e6_c112_se0.25"], ["ir_r3_k5_s2_e6_c160_se0.25"], ["cn_r1_k1_s1_c960"]],
        stem_size=16, num_features=1280, family="mobilenetv3", act="hard_swish"),
    "mobilenetv3_small_100": Genotype.from_arch_def(
        [["ds_r1_k3_s2_e1_c16_se0.25_nre"], ["ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"],
         ["ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"], ["ir_r2_k5_s1_e3_c48_se0.25"],
         ["ir_r3_k5_s2_e6_c96_se0.25"], ["cn_r1_k1_s1_c576"]],
        stem_size=16, num_features=1024, family="mobilenetv3", act="hard_swish"),
    "efficientnet_b0": Genotype.from_arch_def(
        [["ds_r1_k3_s1_e1_c16_se0.25"], ["ir_r2_k3_s2_e6_c24_se0.25"], ["ir_r2_k5_s2_e6_c40_se0.25"],
         ["ir_r3_k3_s2_e6_c80_se0.25"], ["ir_r3_k5_s1_e6_c112_se0.25"], ["ir_r4_k5_s2_e6_c192_se0.25"],
         ["ir_r1_k3_s1_e6_c320_se0.25"]],
        stem_size=32, num_features=1280, act="swish"),
    "efficientnet_lite0": Genotype.from_arch_def(
        [["ds_r1_k3_s1_e1_c16"], ["ir_r2_k3_s2_e6_c24"], ["ir_r2_k5_s2_e6_c40"], ["ir_r3_k3_s2_e6_c80"],
         ["ir_r3_k5_s1_e6_c112"], ["ir_r4_k5_s2_e6_c192"], ["ir_r1_k3_s1_e6_c320"]],
        stem_size=32, num_features=1280, act="relu6", fix_stem=True),
}

SEED_NAMES: tuple[str, ...] = tuple(_SEEDS)


@dataclass(frozen=True)
class WidthVariant:
    """A seed network with every block's channels times ``multiplier``, rounded as timm's
    ``round_channels``; whether the stem and the head conv scale too differs per timm generator."""

    base: str
    multiplier: float
    scales_stem: bool
    head: str  # "keep", or "at_least": max(head, rounded head), as timm's MobileNetV2


# timm's width-multiplied paper networks (same names), so a search's target can be met by a paper
# network of the right size: the baselines a found network has to beat at its own latency
WIDTH_VARIANTS: dict[str, WidthVariant] = {
    "mobilenetv2_050": WidthVariant("mobilenetv2_100", 0.5, True, "at_least"),
    "mobilenetv2_075": WidthVariant("mobilenetv2_100", 0.75, True, "at_least"),
    "mobilenetv2_140": WidthVariant("mobilenetv2_100", 1.4, True, "at_least"),
    "mnasnet_050": WidthVariant("mnasnet_100", 0.5, True, "keep"),
    "mnasnet_075": WidthVariant("mnasnet_100", 0.75, True, "keep"),
    "semnasnet_075": WidthVariant("semnasnet_100", 0.75, True, "keep"),
    "mobilenetv3_large_075": WidthVariant("mobilenetv3_large_100", 0.75, True, "keep"),
    "mobilenetv3_small_050": WidthVariant("mobilenetv3_small_100", 0.5, False, "keep"),
    "mobilenetv3_small_075": WidthVariant("mobilenetv3_small_100", 0.75, True, "keep"),
}
PAPER_NAMES: tuple[str, ...] = SEED_NAMES + tuple(WIDTH_VARIANTS)  # every name seed_architecture knows


def _width_variant(variant: WidthVariant) -> Genotype:
    from search_spaces.timm_adapter import round_width  # timm (and torch) load only when a variant is asked for

    base = _SEEDS[variant.base]
    stages = tuple(tuple(block.with_(out_chs=round_width(block.out_chs, variant.multiplier)) for block in stage)
                   for stage in base.stages)
    head = base.num_features
    if variant.head == "at_least":
        head = max(head, round_width(head, variant.multiplier))
    stem = round_width(base.stem_size, variant.multiplier) if variant.scales_stem else base.stem_size
    return replace(base, stages=stages, stem_size=stem, num_features=head)


MOBILENETV2_SKELETON: tuple[tuple[str, ...], ...] = tuple(tuple(s) for s in _MBV2_SKELETON)


def seed_architecture(name: str) -> Genotype:
    """The genotype of a paper's network (or a width variant of it) by its timm name; the error
    lists the valid names."""
    if name in WIDTH_VARIANTS:
        return _width_variant(WIDTH_VARIANTS[name])
    try:
        return _SEEDS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(PAPER_NAMES)}") from None
