"""The papers' hand-designed and searched networks, trained with the same recipe as ``nas train``.

Stored as ``nas_runs`` rows of kind ``baseline`` with latency measured on this machine at the
same settings, so reports chart them beside found architectures. Networks nas can express come
from its timm seeds; ResNet, ResNeXt and ShuffleNet V2 from torchvision; ShuffleNet V1, which
neither ships, is built here from torch's grouped convolution and channel shuffle. Nothing is
pretrained (nothing can be downloaded): every baseline trains from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from nas.errors import UsageError
from nas.latency import measure_built
from nas.metrics import count_module_macs, count_params
from nas.recipe import TrainSettings
from nas.runs import RunRecord, store_run
from nas.train import Model, TrainObserver, train
from search_spaces import WIDTH_VARIANTS, build_model, seed_architecture
from storage import Store

TOTAL_STRIDE = 32  # every baseline


class ShuffleUnit(nn.Module):
    """ShuffleNet V1's unit (Zhang et al. 2017, Fig. 2b/c): 1x1 group conv, channel shuffle, 3x3
    depthwise conv, 1x1 group conv. Stride 1 adds the input; stride 2 concatenates a 3x3 average
    pool of it, so the convolutions produce only the new channels."""

    def __init__(self, in_chs: int, out_chs: int, groups: int, stride: int, group_first: bool = True) -> None:
        super().__init__()
        mid = out_chs // 4  # bottleneck: a quarter of the unit's output
        made = out_chs - in_chs if stride == 2 else out_chs
        first_groups = groups if group_first else 1  # stage 2's first unit: too few input channels to group
        self.reduce = nn.Sequential(nn.Conv2d(in_chs, mid, 1, groups=first_groups, bias=False), nn.BatchNorm2d(mid),
                                    nn.ReLU(inplace=True), nn.ChannelShuffle(groups))
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid))
        self.expand = nn.Sequential(nn.Conv2d(mid, made, 1, groups=groups, bias=False), nn.BatchNorm2d(made))
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(self.depthwise(self.reduce(x)))
        if self.shortcut is None:
            return torch.relu(out + x)
        return torch.relu(torch.cat([self.shortcut(x), out], 1))


class ShuffleNetV1(nn.Module):
    """ShuffleNet V1 1.0x (the paper's Table 1): a 3x3 stride-2 conv to 24 channels, a max pool,
    stages of 4, 8 and 4 units (the first of each stride 2), global pooling, a linear classifier."""

    STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088), 8: (384, 768, 1536)}
    STAGE_UNITS = (4, 8, 4)

    def __init__(self, groups: int = 3, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        units, channels = [], 24
        for stage, (out_chs, repeats) in enumerate(zip(self.STAGE_CHANNELS[groups], self.STAGE_UNITS, strict=True)):
            for index in range(repeats):
                units.append(ShuffleUnit(channels, out_chs, groups, 2 if index == 0 else 1,
                                         group_first=stage > 0 or index > 0))
                channels = out_chs
        self.features = nn.Sequential(*units)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.stem(x)).mean((2, 3)))


@dataclass(frozen=True)
class Baseline:
    source: str  # where the network's code comes from
    paper: str
    make: Callable[[int], nn.Module]  # num_classes -> an untrained network


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    def make(num_classes: int) -> nn.Module:
        from torchvision.models import resnet, resnet18, shufflenet_v2_x1_0

        if name == "resnet18":
            return resnet18(num_classes=num_classes)
        if name == "resnext26_32x4d":  # ResNeXt-50's grouped bottleneck at 2 blocks per stage: the proxy budget
            return resnet.ResNet(resnet.Bottleneck, [2, 2, 2, 2], num_classes=num_classes, groups=32, width_per_group=4)
        return shufflenet_v2_x1_0(num_classes=num_classes)

    return make


def _timm_seed(name: str) -> Callable[[int], nn.Module]:
    return lambda num_classes: build_model(seed_architecture(name), num_classes=num_classes)


_TIMM_PAPERS = {
    "mobilenetv1_100": "MobileNet V1 (2017)", "mobilenetv2_100": "MobileNet V2 (2018)",
    "mnasnet_100": "MnasNet-B1 (2018)", "semnasnet_100": "MnasNet-A1 (2018)",
    "mobilenetv3_large_100": "MobileNet V3-Large (2019)", "mobilenetv3_small_100": "MobileNet V3-Small (2019)",
    "efficientnet_b0": "EfficientNet (2019)", "efficientnet_lite0": "EfficientNet-Lite (2020)",
}
BASELINES: dict[str, Baseline] = {
    "resnet18": Baseline("torchvision", "ResNet (2015)", _torchvision("resnet18")),
    "resnext26_32x4d": Baseline("torchvision", "ResNeXt (2016), depth scaled down", _torchvision("resnext26_32x4d")),
    "shufflenet_v1_g3": Baseline("nas", "ShuffleNet V1 (2017), g = 3, 1.0x", lambda num_classes: ShuffleNetV1(3, num_classes)),
    "shufflenet_v2_x1_0": Baseline("torchvision", "ShuffleNet V2 (2018)", _torchvision("shufflenet_v2_x1_0")),
    **{name: Baseline("timm", paper, _timm_seed(name)) for name, paper in _TIMM_PAPERS.items()},
    **{name: Baseline("timm", f"{_TIMM_PAPERS[variant.base]}, width x{variant.multiplier:g}", _timm_seed(name))
       for name, variant in WIDTH_VARIANTS.items()},
}

DEFAULT_BASELINES = tuple(name for name in BASELINES if name not in WIDTH_VARIANTS)  # the papers' own widths


def paper_network(name: str) -> nn.Module:
    """A baseline as its latency is counted (1000 classes): what the measuring child builds."""
    return BASELINES[name].make(1000)


def baseline_model(name: str, resolution: int = 224) -> Model:
    """A baseline as something ``train`` trains; the error lists the valid names."""
    if name not in BASELINES:
        raise UsageError(f"--models: unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    baseline = BASELINES[name]
    return Model(name, baseline.make, {"baseline": name, "source": baseline.source, "paper": baseline.paper},
                 partial(measure_built, paper_network, {"name": name}), TOTAL_STRIDE, resolution)


@dataclass(frozen=True)
class BaselineSize:
    """What ``nas show NAME`` prints for a baseline that is not a block network (``--json``: these fields)."""

    name: str
    paper: str
    resolution: int
    params: int
    macs: int


def baseline_size(name: str, resolution: int = 224) -> BaselineSize:
    """Params and MACs of the 1000-class network at ``resolution``, counted as the search counts them."""
    make = baseline_model(name, resolution).make
    return BaselineSize(name, BASELINES[name].paper, resolution, count_params(make(1000)),
                        count_module_macs(lambda: make(1000), resolution))


def run_baselines(
    names: list[str],
    settings: TrainSettings,
    out_dir: Path,
    store: Store,
    *,
    resolution: int = 224,
    observer_for: Callable[[str], TrainObserver | None] = lambda name: None,
) -> list[RunRecord]:
    """Train each baseline into ``out_dir/NAME`` and store it."""
    models = [baseline_model(name, resolution) for name in names]  # every name checked before any training
    return [store_run(train(spec, settings, out_dir / spec.name, observer=observer_for(spec.name)), spec, settings,
                      "baseline", store) for spec in models]
