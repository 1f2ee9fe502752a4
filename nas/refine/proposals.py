"""What NetAdapt may shrink in a network, and the network after shrinking it, as block strings.

A network is read block by block (repeats unrolled). Two kinds of proposal, as MobileNetV3 used
NetAdapt: shrink one block's expansion width (an MBConv's inner channels), or shrink one width
shared by a chain of blocks joined by residual additions (a stage's bottleneck), so that every
addition stays aligned; a block without a residual is a chain of its own (NetAdapt's per-layer
filter cut). Widths are multiples of 8, as timm rounds an MBConv's inner width. The result is
written back as timm block strings, identical neighbours merged again; an expansion width that is
not a whole multiple of the block's input becomes a fractional ratio (``e2.66667``), which timm's
grammar accepts and its builder rounds back to the same width.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from timm.layers import make_divisible

from search_spaces import Block, Genotype

CHANNEL_STEP = 8  # timm's make_divisible divisor: an MBConv's inner width is always a multiple of it
STEM = -1  # the stem's place in a width chain (a first block with a residual adds to the stem's output)


@dataclass(frozen=True)
class Slot:
    """One block of the network (repeats unrolled) with the channels it receives."""

    stage: int
    index: int  # within the stage, repeats unrolled
    block: Block  # repeats 1; the stride it has in place
    in_chs: int

    @property
    def name(self) -> str:
        return f"{self.stage}.{self.index}"

    @property
    def expands(self) -> bool:
        return self.block.type in ("ir", "er")

    @property
    def mid_chs(self) -> int:
        """The inner width timm builds (``make_divisible(in_chs * exp_ratio)``); the input width
        for blocks that do not expand."""
        return make_divisible(self.in_chs * self.block.expansion) if self.expands else self.in_chs

    @property
    def residual(self) -> bool:
        """Whether timm adds the block's input to its output (the rules of its block decoder)."""
        block = self.block
        if block.stride != 1 or self.in_chs != block.out_chs:
            return False
        if block.type == "cn":
            return block.skip is True
        return block.type != "dsa" and block.skip is not False


def slots(genotype: Genotype) -> list[Slot]:
    """The network's blocks in order, each string's repeats unrolled (only the first strides)."""
    found, chs = [], genotype.stem_size
    for stage, strings in enumerate(genotype.stages):
        index = 0
        for string in strings:
            for repeat in range(string.repeats):
                block = string.with_(repeats=1, stride=string.stride if repeat == 0 else 1)
                found.append(Slot(stage, index, block, chs))
                chs, index = block.out_chs, index + 1
    return found


def width_chains(genotype: Genotype, trained_as: Genotype | None = None) -> list[tuple[int, ...]]:
    """Positions (indices into ``slots``, ``STEM`` for the stem) whose output widths must stay
    equal because residual additions join them, in network order. ``trained_as``: the same blocks
    with the strides the network trains with (``nas.proxy.proxy_genotype`` sets early strides to 1
    on tiny images, which adds residuals); its additions join widths too, or a cut could not
    inherit the trained network's weights."""
    trained = slots(trained_as) if trained_as is not None else None
    chains: list[list[int]] = [[STEM]]
    for position, slot in enumerate(slots(genotype)):
        if slot.residual or (trained is not None and trained[position].residual):
            chains[-1].append(position)
        else:
            chains.append([position])
    return [tuple(chain) for chain in chains]


@dataclass(frozen=True)
class Proposal:
    """One way to shrink the network: an expansion width, or a chain's shared width."""

    kind: str  # "expand" or "width"
    positions: tuple[int, ...]  # indices into ``slots`` (STEM for the stem)
    label: str  # which blocks, for people: "3.1" or "3.0-3.3"

    def describe(self, old: int, new: int) -> str:
        return f"{self.kind} {self.label} {old}->{new}"


def proposals(genotype: Genotype, trained_as: Genotype | None = None) -> list[Proposal]:
    """Every proposal that has a narrower width left to try (the narrowest width is 8); width
    chains as ``width_chains(genotype, trained_as)`` joins them."""
    found = []
    placed = slots(genotype)
    for chain in width_chains(genotype, trained_as):
        names = [placed[p].name if p != STEM else "stem" for p in chain]
        label = names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"
        if current_width(genotype, Proposal("width", chain, label)) > CHANNEL_STEP:
            found.append(Proposal("width", chain, label))
    for position, slot in enumerate(placed):
        if slot.expands and slot.mid_chs > CHANNEL_STEP:
            found.append(Proposal("expand", (position,), slot.name))
    return found


def current_width(genotype: Genotype, proposal: Proposal) -> int:
    placed = slots(genotype)
    first = proposal.positions[0]
    if proposal.kind == "expand":
        return placed[first].mid_chs
    return genotype.stem_size if first == STEM else placed[first].block.out_chs


def narrower_widths(genotype: Genotype, proposal: Proposal) -> list[int]:
    """The widths a proposal may take, narrowest first: multiples of 8 below the current one."""
    return list(range(CHANNEL_STEP, current_width(genotype, proposal), CHANNEL_STEP))


def _expansion(mid_chs: int, in_chs: int) -> float:
    """The ratio that makes timm build ``mid_chs`` from ``in_chs``, written as the block string
    writes it (6 significant digits), so the genotype round-trips through its strings."""
    ratio = float(format(mid_chs / in_chs, "g"))
    if make_divisible(in_chs * ratio) != mid_chs:
        raise ValueError(f"no expansion ratio builds {mid_chs} channels from {in_chs}")
    return ratio


def shrink(genotype: Genotype, proposal: Proposal, width: int) -> Genotype:
    """The network with the proposal's width set to ``width``. Every other MBConv keeps its inner
    width in channels (its ratio is recomputed when its input narrows), so proposals do not
    interfere."""
    placed = slots(genotype)
    mids = [slot.mid_chs for slot in placed]
    outs = [slot.block.out_chs for slot in placed]
    stem = genotype.stem_size
    if proposal.kind == "expand":
        mids[proposal.positions[0]] = width
    else:
        for position in proposal.positions:
            if position == STEM:
                stem = width
            else:
                outs[position] = width
    blocks, chs = [], stem
    for slot, mid, out in zip(placed, mids, outs, strict=True):
        block = slot.block.with_(out_chs=out)
        if slot.expands:
            block = block.with_(exp_ratio=_expansion(mid, chs))
        blocks.append((slot.stage, block))
        chs = out
    return replace(genotype, stem_size=stem, stages=_merge(blocks, len(genotype.stages)))


def _merge(blocks: list[tuple[int, Block]], stages: int) -> tuple[tuple[Block, ...], ...]:
    """Unrolled blocks back into block strings: a block joins the string before it when it is that
    string's repeat (stride 1, every other option equal)."""
    merged: list[list[Block]] = [[] for _ in range(stages)]
    for stage, block in blocks:
        strings = merged[stage]
        if strings and block.stride == 1 and block == strings[-1].with_(repeats=1, stride=1):
            strings[-1] = strings[-1].with_(repeats=strings[-1].repeats + 1)
        else:
            strings.append(block)
    return tuple(tuple(strings) for strings in merged)


def widths(genotype: Genotype) -> dict[str, int]:
    """Every width a proposal can change, by name: ``stem``, ``out 3.1``, ``mid 3.1``."""
    found = {"stem": genotype.stem_size}
    for slot in slots(genotype):
        found[f"out {slot.name}"] = slot.block.out_chs
        if slot.expands:
            found[f"mid {slot.name}"] = slot.mid_chs
    return found
