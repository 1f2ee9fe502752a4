"""Size and cost of a network: parameters, and MACs from torch's own FLOP counter."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import Genotype, build_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(genotype: Genotype, resolution: int, num_classes: int = 1000) -> int:
    """Multiply-accumulates of one image, counted on the meta device (no memory, no arithmetic)."""
    with torch.device("meta"):
        model = build_model(genotype, num_classes=num_classes).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(1, 3, resolution, resolution))
    return counter.get_total_flops() // 2
