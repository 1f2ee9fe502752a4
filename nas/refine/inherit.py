"""Weight inheritance: a narrower network starts from its parent's weights, filters kept by L2 norm.

NetAdapt keeps the filters with the largest L2 norm. torch-pruning's dependency graph removes a
channel everywhere it flows (the convolution that makes it, its BatchNorm, the depthwise conv and
SE that read it, every block joined to it by a residual addition, the next block's input), so no
tensor surgery is written here: the child's shapes are read from the child as timm builds it, and
each convolution that makes more channels than the child's has its weakest channel groups removed.
The pruned weights are then loaded into the child built by timm, so the result is an ordinary
timm network of the child's block strings.
"""

from __future__ import annotations

import copy

import torch
import torch_pruning as tp

from search_spaces import Genotype, build_model

EXAMPLE_SIZE = 32  # the graph is traced on one small image: shapes of weights do not depend on it


def inherit(parent: torch.nn.Module, child: Genotype, *, num_classes: int, in_chans: int) -> torch.nn.Module:
    """``child`` built by timm with ``parent``'s weights, narrower layers keeping the channels whose
    filters have the largest L2 norm. ``parent`` is left untouched."""
    with torch.device("meta"):
        target = build_model(child, num_classes=num_classes, in_chans=in_chans)
    wanted = {name: module.out_channels for name, module in target.named_modules() if isinstance(module, torch.nn.Conv2d)}
    pruned = copy.deepcopy(parent).eval()  # the parent stays whole for the next proposal
    graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=torch.randn(1, in_chans, EXAMPLE_SIZE, EXAMPLE_SIZE))
    importance = tp.importance.MagnitudeImportance(p=2)
    for name, module in pruned.named_modules():
        if not isinstance(module, torch.nn.Conv2d) or module.groups == module.in_channels > 1:
            continue  # a depthwise conv's channels follow its input, pruned with the layer before it
        if name not in wanted:
            raise ValueError(f"{name} of the parent has no counterpart in the child: not the same block structure")
        extra = module.out_channels - wanted[name]
        if extra < 0:
            raise ValueError(f"{name}: the child is wider ({wanted[name]}) than the parent ({module.out_channels})")
        if extra:
            everything = graph.get_pruning_group(module, tp.prune_conv_out_channels, idxs=list(range(module.out_channels)))
            weakest = torch.argsort(importance(everything))[:extra].tolist()
            graph.get_pruning_group(module, tp.prune_conv_out_channels, idxs=weakest).prune()
    model = build_model(child, num_classes=num_classes, in_chans=in_chans)
    model.load_state_dict(pruned.state_dict())  # any shape torch-pruning left different is an error here
    return model

