"""What makes a training step fast on a CPU, applied to timm's networks without changing what they
compute: proxy trainings, fine-tunes and ``nas train`` go through here (the supernet takes the
fused AdamW only: padding its sub-networks made a read-off 1.13x slower).
``bench/cpu_speed.py`` measures the last two, side by side (a proxy epoch 0.76x its time).

- Channels-last layout: oneDNN's depthwise convolutions and their gradients are much faster in it
  (a proxy step 1.55x, ``bench/layout.py``).
- Torch's fused AdamW: on a CPU, torch's default AdamW steps each parameter in Python (a proxy
  epoch 0.93x with the fused kernel).
- Explicit padding where a depthwise kernel is larger than its input map (a 3x3 on the 2x2 maps the
  proxy's last stages run on, a 5x5 on 4x4): oneDNN's fast depthwise weight-gradient kernel refuses
  such a layer and computes it as one small matrix product per channel; the same layer padded
  beforehand gets a fast kernel (forward and backward 0.44x the time, median; an epoch 0.82x)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2


def channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in place in channels-last layout (NHWC), the faster one for its convolutions."""
    return model.to(memory_format=torch.channels_last)


def adamw(params: torch.nn.Module | list[dict], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """timm's AdamW (no decay on BatchNorm and biases) with torch's fused kernel."""
    return create_optimizer_v2(params, "adamw", lr=lr, weight_decay=weight_decay, fused=True)


def _depthwise_padded(module: torch.nn.Module) -> bool:
    return (type(module) is torch.nn.Conv2d and module.groups == module.in_channels > 1
            and module.padding_mode == "zeros" and isinstance(module.padding, tuple) and any(module.padding))


def _pad_input(pad: tuple[int, int, int, int], module: torch.nn.Module, args: tuple) -> tuple:
    return (F.pad(args[0], pad), *args[1:])


def pad_small_maps(model: torch.nn.Module, example: torch.Tensor) -> list[torch.nn.Conv2d]:
    """Move the zero padding of each depthwise convolution whose kernel is larger than its input
    map into a separate step before it, in place; returns the layers changed. ``example`` (a batch,
    or an empty tensor on the meta device for a network built there) fixes every layer's map size:
    a network trains at one resolution. The network computes the same function at any size."""
    sizes: dict[torch.nn.Conv2d, tuple[int, int]] = {}

    def record(module: torch.nn.Conv2d, args: tuple) -> None:
        sizes[module] = tuple(args[0].shape[-2:])

    hooks = [module.register_forward_pre_hook(record) for module in model.modules() if _depthwise_padded(module)]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()
            model(example[:1])
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    changed = []
    for conv, (height, width) in sizes.items():
        if conv.kernel_size[0] > height or conv.kernel_size[1] > width:
            pad_h, pad_w = conv.padding
            conv.padding = (0, 0)
            conv.register_forward_pre_hook(functools.partial(_pad_input, (pad_w, pad_w, pad_h, pad_h)))
            changed.append(conv)
    return changed
