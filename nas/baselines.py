"""The papers' hand-designed and searched networks, trained with the same recipe as ``nas train``.

Stored as ``nas_runs`` rows of kind ``baseline`` with latency measured on this machine at the
same settings, so reports chart them beside found architectures. Networks nas can express come
from its timm seeds; ResNet, ResNeXt and ShuffleNet V2 from torchvision. Nothing is pretrained
(nothing can be downloaded): every baseline trains from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.errors import UsageError
from nas.train import Model, TrainObserver, TrainResult, TrainSettings, store_run, train
from search_spaces import build_model, seed_architecture


def _torchvision(name: str) -> Callable[[int], torch.nn.Module]:
    def make(num_classes: int) -> torch.nn.Module:
        from torchvision.models import resnet, resnet18, shufflenet_v2_x1_0

        if name == "resnet18":
            return resnet18(num_classes=num_classes)
        if name == "resnext26_32x4d":  # ResNeXt-50's grouped bottleneck at 2 blocks per stage: the proxy budget
            return resnet.ResNet(resnet.Bottleneck, [2, 2, 2, 2], num_classes=num_classes, groups=32, width_per_group=4)
        return shufflenet_v2_x1_0(num_classes=num_classes)

    return make


def _timm_seed(name: str) -> Callable[[int], torch.nn.Module]:
    return lambda num_classes: build_model(seed_architecture(name), num_classes=num_classes)


BASELINES: dict[str, tuple[str, str]] = {  # name -> (source, paper)
    "resnet18": ("torchvision", "ResNet (2015)"),
    "resnext26_32x4d": ("torchvision", "ResNeXt (2016), depth scaled down"),
    "shufflenet_v2_x1_0": ("torchvision", "ShuffleNet V2 (2018)"),
    "mobilenetv1_100": ("timm", "MobileNet V1 (2017)"),
    "mobilenetv2_100": ("timm", "MobileNet V2 (2018)"),
    "mnasnet_100": ("timm", "MnasNet-B1 (2018)"),
    "mobilenetv3_large_100": ("timm", "MobileNet V3 (2019)"),
    "mobilenetv3_small_100": ("timm", "MobileNet V3 (2019)"),
    "efficientnet_b0": ("timm", "EfficientNet (2019)"),
}
TOTAL_STRIDE = 32  # every baseline


def baseline_model(name: str, resolution: int = 224) -> Model:
    """A baseline as something ``train`` trains; the error lists the valid names."""
    if name not in BASELINES:
        raise UsageError(f"--models: unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    source, paper = BASELINES[name]
    make = _torchvision(name) if source == "torchvision" else _timm_seed(name)
    return Model(name, make, {"baseline": name, "source": source, "paper": paper}, TOTAL_STRIDE, resolution)


def count_module_macs(make: Callable[[int], torch.nn.Module], resolution: int) -> int:
    """Multiply-accumulates of one RGB image through ``make(1000)``, counted on the meta device."""
    with torch.device("meta"):
        model = make(1000).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(1, 3, resolution, resolution))
    return counter.get_total_flops() // 2


def run_baselines(
    names: list[str],
    settings: TrainSettings,
    out_dir: Path,
    *,
    storage_url: str | None = None,
    resolution: int = 224,
    observer_for: Callable[[str], TrainObserver | None] = lambda name: None,
) -> list[tuple[int, TrainResult]]:
    """Train each baseline into ``out_dir/NAME`` and store it; returns (run id, result) pairs."""
    models = [baseline_model(name, resolution) for name in names]  # every name checked before any training
    results = []
    for spec in models:
        result = train(spec, settings, out_dir / spec.name, observer=observer_for(spec.name))
        results.append((store_run(result, spec, settings, "baseline", storage_url), result))
    return results
