"""The one place that touches timm's private EfficientNet builder.

``timm.models._efficientnet_builder`` is not re-exported by timm, so its use is confined here
and the timm version range is pinned in ``pyproject.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from timm.layers import BatchNormAct2d, GroupNormAct, StdConv2d, get_act_layer, make_divisible
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import _scale_stage_depth, decode_arch_def, round_channels
from timm.models.efficientnet import EfficientNet
from timm.models.mobilenetv3 import MobileNetV3

from search_spaces.genotype import Genotype


NORMS = {
    "bn": "BatchNorm (timm's default)",
    "gn-ws": "GroupNorm + Weight Standardization (BiT): batch-size independent, for small batches and fine-tuning",
}
GN_GROUPS = 32  # BiT's group count, lowered to the largest divisor of narrower layers


def _keep(channels: int) -> int:
    """Channel 'rounding' that keeps the genotype's absolute counts as written."""
    return int(channels)


def build_model(
    genotype: Genotype,
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    norm: str = "bn",
) -> torch.nn.Module:
    """Build ``genotype`` as a plain timm ``EfficientNet`` or ``MobileNetV3`` module."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")
    common = dict(
        block_args=decode_arch_def(genotype.arch_def),
        num_classes=num_classes,
        in_chans=in_chans,
        num_features=genotype.num_features,
        stem_size=genotype.stem_size,
        fix_stem=True,  # stem_size is absolute already
        round_chs_fn=_keep,
        act_layer=get_act_layer(genotype.act),
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
    if genotype.family == "mobilenetv3":
        se_layer = partial(SqueezeExcite, gate_layer="hard_sigmoid", force_act_layer=torch.nn.ReLU,
                           rd_round_fn=round_channels)
        model = MobileNetV3(se_layer=se_layer, **common)
    else:
        model = EfficientNet(**common)
    return _to_group_norm_ws(model) if norm == "gn-ws" else model


def _to_group_norm_ws(model: torch.nn.Module) -> torch.nn.Module:
    """Swap every BatchNorm for timm's ``GroupNormAct`` and every conv that feeds a norm (the
    bias-free ones; SE and MobileNetV3's head convs keep their bias and stay plain) for timm's
    ``StdConv2d``, keeping each layer's activation module."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, BatchNormAct2d):
                channels = child.num_features
                new = GroupNormAct(channels, num_groups=math.gcd(channels, GN_GROUPS), eps=child.eps)
                new.act, new.drop = child.act, child.drop
            elif type(child) is torch.nn.Conv2d and child.bias is None:
                new = StdConv2d(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                                padding=child.padding, dilation=child.dilation, groups=child.groups, bias=False)
                new.weight.data.copy_(child.weight.data)  # keep timm's initialisation
            else:
                continue
            setattr(parent, name, new)
    return model


def network_parts(model: torch.nn.Module) -> tuple[torch.nn.Module, list[torch.nn.Module], torch.nn.Module]:
    """(stem, blocks in order, head) of a model ``build_model`` made, sharing its weights.

    Run in sequence they compute the model's eval-mode forward pass; a latency table times
    each part on its own.
    """
    nn = torch.nn
    stem = nn.Sequential(model.conv_stem, model.bn1)
    blocks = [block for stage in model.blocks for block in stage]
    if isinstance(model, MobileNetV3):
        head = nn.Sequential(model.global_pool, model.conv_head, model.norm_head, model.act2, model.flatten,
                             model.classifier)
    else:
        head = nn.Sequential(model.conv_head, model.bn2, model.global_pool, model.classifier)
    return stem, blocks, head


# --- EfficientNet's rounding, for compound scaling (timm's own helpers, so scaled networks are timm's) ---
CHANNEL_DIVISOR = 8


def round_width(channels: int, multiplier: float) -> int:
    """``channels * multiplier`` to the nearest multiple of 8, one multiple more if that lost over
    10% (timm ``round_channels``, which builds ``efficientnet_b1``..``b7``)."""
    return round_channels(channels, multiplier=multiplier, divisor=CHANNEL_DIVISOR)


def scale_repeats(repeats: Sequence[int], multiplier: float) -> list[int]:
    """One stage's block repeats scaled as ``decode_arch_def(depth_multiplier=m, depth_trunc='ceil')``
    does: the stage total rounded up, then shared out from the last block string backwards."""
    scaled = _scale_stage_depth(list(range(len(repeats))), list(repeats), multiplier, "ceil")
    return [scaled.count(index) for index in range(len(repeats))]


def round_resolution(resolution: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """An input size to the nearest multiple of ``divisor`` (timm ``make_divisible``)."""
    return make_divisible(resolution, divisor)
