"""The supernet's weights, and every sub-network as a timm network that runs on slices of them.

timm builds every module: the supernet's weights come from the widest network of each weight set
(see ``nas.supernet``), and a sub-network is ``build_model`` of its genotype on the meta device,
run with ``torch.func.functional_call`` on views of the supernet's parameters, so its gradients
land in exactly the slices it used. BatchNorm running statistics are not shared: each forward pass
gets its own buffers, and evaluation first re-estimates them on training batches (OFA).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import torch
from torch.func import functional_call

from nas.errors import UsageError
from nas.proxy import proxy_genotype
from nas.supernet.sampling import widest
from nas.turns import computing
from search_spaces import FactorizedSpace, Genotype, build_model
from search_spaces.spaces import OPS

Index = tuple[slice, ...]
_CACHE_SIZE = 64  # built sub-networks kept (meta-device modules: no weight memory)


# A depthwise-separable block is an MBConv block without its expansion conv (MobileNetV2's
# expansion-1 block), so it runs on the MBConv weights after the expansion: timm's layer names of
# a ``ds`` block -> those of an ``ir`` block.
_DS_IN_IR = {"conv_dw": "conv_dw", "bn1": "bn2", "se": "se", "conv_pw": "conv_pwl", "bn2": "bn3"}


def weight_sets(space: FactorizedSpace) -> dict[str, Genotype]:
    """The weight sets the space needs, each with the widest network that holds it: one per block
    type, except ``ds``, which shares the ``ir`` set when the space has both."""
    types = dict.fromkeys(OPS[op][0] for op in space.ops)
    return {block_type: widest(space, block_type) for block_type in types if not (block_type == "ds" and "ir" in types)}


def _block_types(genotype: Genotype) -> dict[str, str]:
    """``blocks.{stage}.{index}`` (timm's module path) -> its block type."""
    types = {}
    for i, stage in enumerate(genotype.stages):
        j = 0
        for block in stage:
            for _ in range(block.repeats):
                types[f"blocks.{i}.{j}"] = block.type
                j += 1
    return types


def _source(name: str, block_types: dict[str, str], sets: Collection[str]) -> str:
    """The supernet parameter a timm parameter name comes from."""
    if not name.startswith("blocks."):
        return name
    stage, index, layer, rest = name.split(".", 4)[1:]
    block_type = block_types[f"blocks.{stage}.{index}"]
    if block_type == "ds" and "ir" in sets:
        block_type, layer = "ir", _DS_IN_IR.get(layer, layer)
    return f"blocks.{stage}.{index}.{block_type}.{layer}.{rest}"


def _index(full: torch.Size, part: torch.Size) -> Index | None:
    """Leading channels in the first two dimensions, the centred window in the others (kernels)."""
    if len(full) != len(part) or any(p > f for p, f in zip(part, full, strict=True)):
        return None
    return tuple(slice(0, p) if dim < 2 else slice((f - p) // 2, (f - p) // 2 + p)
                 for dim, (f, p) in enumerate(zip(full, part, strict=True)))


def fresh_buffers(subnet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Empty BatchNorm statistics for one forward pass or one calibration of ``subnet``."""
    buffers = {}
    for path, module in subnet.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            prefix = f"{path}." if path else ""
            buffers[prefix + "running_mean"] = torch.zeros(module.num_features)
            buffers[prefix + "running_var"] = torch.ones(module.num_features)
            buffers[prefix + "num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    missing = {name for name, _ in subnet.named_buffers()} - buffers.keys()
    if missing:
        raise ValueError(f"buffers outside BatchNorm have no supernet source: {sorted(missing)[:3]}")
    return buffers


@dataclass(frozen=True)
class SubNet:
    """A built sub-network: the timm module (meta device) and where each parameter comes from."""

    module: torch.nn.Module
    sources: dict[str, tuple[str, Index]]  # timm parameter name -> (supernet name, index)


class Supernet:
    """Every network of ``space`` at ``resolution`` (the proxy's stride rule) in one weight set."""

    def __init__(self, space: FactorizedSpace, *, num_classes: int, in_chans: int, resolution: int) -> None:
        self.space = space
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.resolution = resolution
        self.params: dict[str, torch.nn.Parameter] = {}
        self.classifier: set[str] = set()  # the names of the last layer's parameters
        self.sets = weight_sets(space)
        for genotype in self.sets.values():
            model = build_model(proxy_genotype(genotype, resolution), num_classes=num_classes, in_chans=in_chans)
            head = {id(p) for p in model.get_classifier().parameters()}
            for name, param in model.named_parameters():
                # stem and head have the same shapes in every set's network: the first one's
                source = _source(name, _block_types(genotype), self.sets)
                self.params.setdefault(source, param)
                if id(param) in head:
                    self.classifier.add(source)
        self._built: OrderedDict[str, SubNet] = OrderedDict()

    def subnet(self, genotype: Genotype) -> SubNet:
        """The timm network of ``genotype`` and its parameters' sources; a genotype the supernet
        holds no weights for is a one-line ``UsageError``."""
        if genotype.key in self._built:
            self._built.move_to_end(genotype.key)
            return self._built[genotype.key]
        if self.space.params_of(genotype) is None:  # shapes alone would admit e.g. a ds block on never-trained MBConv weights
            raise UsageError(f"architecture {genotype.key} is not a network of the {self.space.name} space")
        with torch.device("meta"):
            module = build_model(proxy_genotype(genotype, self.resolution), num_classes=self.num_classes,
                                 in_chans=self.in_chans)
        for bn in module.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.momentum = None  # statistics are a plain average over the batches seen (calibration)
        block_types = _block_types(genotype)
        sources = {}
        for name, param in module.named_parameters():
            source = _source(name, block_types, self.sets)
            index = _index(self.params[source].shape, param.shape) if source in self.params else None
            if index is None:
                raise UsageError(f"architecture {genotype.key} is not a sub-network of the {self.space.name} supernet "
                                 f"(no weights for {name} {tuple(param.shape)})")
            sources[name] = (source, index)
        self._built[genotype.key] = built = SubNet(module, sources)
        if len(self._built) > _CACHE_SIZE:
            self._built.popitem(last=False)
        return built

    def holds(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` is a network of this supernet's space (the papers' networks often are not)."""
        try:
            self.subnet(genotype)
        except UsageError:
            return False
        return True

    def weights(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The sub-network's parameters as views of the supernet's (gradients flow back)."""
        return {name: self.params[source][index] for name, (source, index) in self.subnet(genotype).sources.items()}

    def forward(self, genotype: Genotype, x: torch.Tensor, *, train: bool,
                buffers: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits of the sub-network; training mode normalises by batch statistics, and updates
        ``buffers`` (fresh ones when none are given). Runs channels-last: a third faster here on
        these small maps (the weights' slices are copied into that layout, gradients flow back)."""
        module = self.subnet(genotype).module
        module.train(train)
        weights = {name: w.contiguous(memory_format=torch.channels_last) if w.ndim == 4 else w
                   for name, w in self.weights(genotype).items()}
        state = {**weights, **(buffers if buffers is not None else fresh_buffers(module))}
        return functional_call(module, state, (x.contiguous(memory_format=torch.channels_last),))

    def calibrate(self, genotype: Genotype, batches: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
        """BatchNorm statistics of the sub-network re-estimated on ``batches`` (OFA's BN calibration)."""
        buffers = fresh_buffers(self.subnet(genotype).module)
        with torch.no_grad():
            for x in batches:
                with computing():
                    self.forward(genotype, x, train=True, buffers=buffers)
        return buffers

    def accuracy(self, genotype: Genotype, buffers: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                 batch_size: int = 500) -> float:
        correct = 0
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                with computing():
                    logits = self.forward(genotype, x[start:start + batch_size], train=False, buffers=buffers)
                correct += (logits.argmax(1) == y[start:start + batch_size]).sum().item()
        return correct / len(x)

    def state_dict(self, genotype: Genotype, buffers: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A plain timm state dict of the sub-network (copies): loads into ``build_model(genotype)``
        at any stride, since strides own no weights."""
        return {name: t.detach().clone() for name, t in {**self.weights(genotype), **buffers}.items()}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: p.detach() for name, p in self.params.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy stored weights in; the names and shapes must be this supernet's exactly."""
        if tensors.keys() != self.params.keys():
            raise UsageError(f"the stored supernet does not match the {self.space.name} space's weights "
                             f"({len(tensors)} tensors stored, {len(self.params)} expected)")
        with torch.no_grad():
            for name, param in self.params.items():
                if tensors[name].shape != param.shape:
                    raise UsageError(f"the stored supernet's {name} is {tuple(tensors[name].shape)}, "
                                     f"the {self.space.name} space needs {tuple(param.shape)}")
                param.copy_(tensors[name])
