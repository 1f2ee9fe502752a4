"""What a latency table is made of: a network's layers, at the input shape each one meets.

A network's layers are its stem, each block (repeats unrolled) at its input shape, and its head.
Each distinct layer is an entry of the table, keyed by what its latency depends on. ``place`` is
the one walk through a network's spatial sizes; the flat layer list and the predictor's cached
per-block-string sums both come from it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

import torch

from nas.errors import UsageError
from search_spaces import Block, FactorizedSpace, Genotype, build_model, get_space, network_parts
from search_spaces.blocks import encode

NUM_CLASSES = 1000  # the ImageNet head every measured network carries
_UNUSED_HEAD = 8  # head width of builds whose head is thrown away (timm's MobileNetV3 needs one)
_STEM_BLOCK = dict(type="ds", repeats=1, kernel=3, stride=1)  # a placeholder stage for stem/head-only builds


@dataclass(frozen=True)
class Layer:
    """One entry of a table: a stem, a block or a head, at its input shape."""

    kind: str  # "stem" | "block" | "head"
    family: str
    act: str
    in_chs: int
    size: int  # input height and width
    block: Block | None = None  # repeats 1, stride as placed
    out_chs: int = 0  # stem width, or head width (num_features)

    @cached_property
    def key(self) -> str:
        what = encode(self.block) if self.block is not None else f"c{self.out_chs}"
        return f"{self.kind}:{self.family}:{self.act}:{what}:i{self.in_chs}:r{self.size}"

    @property
    def activations(self) -> int:
        """Input elements: the memory traffic a layer adds that its weights do not show."""
        return self.in_chs * self.size * self.size

    @property
    def expanded(self) -> float:
        """Elements of the widest tensor inside the layer (an MBConv's expansion), which leaves
        the cache inside a network but not when the layer is timed alone."""
        grow = self.block.expansion if self.block is not None and self.block.type in ("ir", "er") else 1.0
        return self.activations * grow

    def module(self) -> torch.nn.Module:
        """The layer as timm builds it (a one-block network built by timm, then cut out)."""
        if self.kind == "block":
            genotype = Genotype(stages=((self.block,),), stem_size=self.in_chs, num_features=_UNUSED_HEAD,
                                family=self.family, act=self.act)
            return network_parts(build_model(genotype, num_classes=NUM_CLASSES))[1][0]
        placeholder = Block(out_chs=self.in_chs, **_STEM_BLOCK)  # type: ignore[arg-type]
        stem_size = self.out_chs if self.kind == "stem" else self.in_chs
        num_features = self.out_chs if self.kind == "head" else _UNUSED_HEAD
        genotype = Genotype(stages=((placeholder,),), stem_size=stem_size, num_features=num_features,
                            family=self.family, act=self.act)
        stem, _, head = network_parts(build_model(genotype, num_classes=NUM_CLASSES))
        return stem if self.kind == "stem" else head

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.in_chs, self.size, self.size)


@lru_cache(maxsize=1 << 16)
def _block_layer(block: Block, family: str, act: str, in_chs: int, size: int) -> Layer:
    if not (block.stride == 1 and in_chs == block.out_chs):
        block = block.with_(skip=None)  # no residual is possible: skip or not is the same layer
    return Layer("block", family, act, in_chs, size, block)


class PlacedBlock(NamedTuple):
    """A block string in its context: the same string at the same input is the same layers in
    every network, so a predictor sums it once (a tuple: cheap to make and to hash)."""

    block: Block
    family: str
    act: str
    in_chs: int
    size: int  # input height and width

    @property
    def layers(self) -> tuple[Layer, ...]:
        return _unrolled(self)


@lru_cache(maxsize=1 << 16)
def _unrolled(placed: PlacedBlock) -> tuple[Layer, ...]:
    """The string's layers, repeats unrolled (the first strides)."""
    block, family, act, in_chs, size = placed
    first = block.with_(repeats=1)
    rest = first.with_(stride=1)
    layers = []
    for i in range(block.repeats):
        layer = _block_layer(first if i == 0 else rest, family, act, in_chs, size)
        layers.append(layer)
        size, in_chs = -(-size // layer.block.stride), block.out_chs
    return tuple(layers)


class Placement(NamedTuple):
    """A network as a table sees it: its stem, each block string at its input, its head."""

    stem: Layer
    blocks: tuple[PlacedBlock, ...]
    head: Layer

    @property
    def layers(self) -> tuple[Layer, ...]:
        return (self.stem, *itertools.chain.from_iterable(b.layers for b in self.blocks), self.head)


def place(genotype: Genotype, resolution: int) -> Placement:
    """Walk ``genotype`` at ``resolution`` without building it.

    Spatial sizes follow timm's symmetric padding: a stride-s convolution maps n to ceil(n/s).
    """
    family, act = genotype.family, genotype.act
    size, chs = -(-resolution // 2), genotype.stem_size
    blocks = []
    for stage in genotype.stages:
        for block in stage:
            blocks.append(PlacedBlock(block, family, act, chs, size))
            size, chs = -(-size // block.stride), block.out_chs
    return Placement(Layer("stem", family, act, 3, resolution, out_chs=genotype.stem_size), tuple(blocks),
                     Layer("head", family, act, chs, size, out_chs=genotype.num_features))


def network_layers(genotype: Genotype, resolution: int) -> tuple[Layer, ...]:
    """Every layer of ``genotype`` at ``resolution``, in order."""
    return place(genotype, resolution).layers


def space_layers(space: FactorizedSpace, resolution: int) -> dict[str, Layer]:
    """Every distinct layer the space can produce at ``resolution``, by key."""
    layers: dict[str, Layer] = {}
    for genotype in space.covering_genotypes():
        for layer in network_layers(genotype, resolution):
            layers.setdefault(layer.key, layer)
    return layers


class _RandomPicks:
    """A ``Suggester`` drawing uniformly: random networks of a space without an Optuna study."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def suggest_categorical(self, name: str, choices: Sequence) -> object:
        return self.rng.choice(list(choices))


def random_networks(space: FactorizedSpace, count: int, seed: int, exclude: Iterable[str] = ()) -> list[Genotype]:
    """``count`` distinct random networks of the space, none whose key is in ``exclude``."""
    picks, seen, found = _RandomPicks(seed), set(exclude), []
    for _ in range(100 * count):
        genotype = space.sample(picks)
        if genotype.key not in seen:
            seen.add(genotype.key)
            found.append(genotype)
            if len(found) == count:
                break
    return found


def space_named(name: str) -> FactorizedSpace:
    """The space ``--space`` names; an unknown name is a usage error listing the valid ones."""
    try:
        return get_space(name)
    except ValueError as err:
        raise UsageError(f"--space: {err}") from None
