"""Size and cost of a network: parameters, and MACs from torch's own FLOP counter.

The one place MACs are counted, for a genotype (search, scaling, latency tables, ``nas show``)
and for any module (baselines, trained networks), so every number in a report is counted alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import Genotype, build_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_counts(make: Callable[[], torch.nn.Module], resolution: int) -> tuple[int, int]:
    """(parameters, MACs) of ``make()``, built once on the meta device (no memory, no arithmetic)."""
    with torch.device("meta"):
        model = make().eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(1, 3, resolution, resolution))
    return count_params(model), counter.get_total_flops() // 2


def count_module_macs(make: Callable[[], torch.nn.Module], resolution: int) -> int:
    """Multiply-accumulates of one RGB ``resolution`` image through ``make()``, built and run on
    the meta device. Convolutions and linear layers count; norms, activations, pooling and
    additions do not (as in the papers' FLOPs)."""
    return _meta_counts(make, resolution)[1]


def count_macs(genotype: Genotype, resolution: int, num_classes: int = 1000) -> int:
    """Multiply-accumulates of one image through the network ``genotype`` describes."""
    return count_module_macs(lambda: build_model(genotype, num_classes=num_classes), resolution)


def count_size(genotype: Genotype, resolution: int) -> tuple[int, int]:
    """(parameters, MACs) of the network ``genotype`` describes from one build: a search counts
    both for every trial, and building the timm network is a third of the cost."""
    return _meta_counts(lambda: build_model(genotype), resolution)
