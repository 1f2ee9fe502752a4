"""The one place that touches timm's private EfficientNet builder.

``timm.models._efficientnet_builder`` is not re-exported by timm, so its use is confined here
and the timm version range is pinned in ``pyproject.toml``.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import get_act_layer
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import decode_arch_def, round_channels
from timm.models.efficientnet import EfficientNet
from timm.models.mobilenetv3 import MobileNetV3

from search_spaces.genotype import Genotype


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
) -> torch.nn.Module:
    """Build ``genotype`` as a plain timm ``EfficientNet`` or ``MobileNetV3`` module."""
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
        return MobileNetV3(se_layer=se_layer, **common)
    return EfficientNet(**common)
