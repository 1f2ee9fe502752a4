"""Which sub-networks a supernet step trains: the sandwich rule (BigNAS, OFA).

Every step trains the largest network, the smallest and a few random ones. "Largest" and
"smallest" differ only in the choices that own weights (op, kernel, SE, width, depth); activation
and skip have none and take the space's first choice in both, and random networks cover them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from search_spaces import FactorizedSpace, Genotype
from search_spaces.spaces import OPS

Pick = Callable[[str, list], object]  # (choice, its options) -> the option


class _Picker:
    """A ``search_spaces.spaces.Suggester`` that answers each ``s{stage}_{choice}`` with ``pick``
    and keeps its answers (Optuna's parameters of the network)."""

    def __init__(self, pick: Pick) -> None:
        self.pick = pick
        self.params: dict[str, object] = {}

    def suggest_categorical(self, name: str, choices: Sequence) -> object:
        self.params[name] = self.pick(name.split("_", 1)[1], list(choices))
        return self.params[name]


def _op_size(op: str) -> float:
    """Ops ranked by the width of their hidden layer (MBConv's expansion; 0 for ds and conv)."""
    return OPS[op][1] or 0.0


def _largest(choice: str, options: list) -> object:
    if choice == "op":
        return max(options, key=_op_size)
    if choice in ("kernel", "se", "width", "layers"):
        return max(options)
    return options[0]


def _smallest(choice: str, options: list) -> object:
    if choice == "op":
        return min(options, key=_op_size)
    if choice in ("kernel", "se", "width", "layers"):
        return min(options)
    return options[0]


def largest(space: FactorizedSpace) -> Genotype:
    return space.sample(_Picker(_largest))


def smallest(space: FactorizedSpace) -> Genotype:
    return space.sample(_Picker(_smallest))


def end_params(space: FactorizedSpace, end: str) -> dict[str, object]:
    """Optuna's parameters of the sandwich's ``end``, ``"largest"`` or ``"smallest"``."""
    picker = _Picker({"largest": _largest, "smallest": _smallest}[end])
    space.sample(picker)
    return picker.params


def random_genotype(space: FactorizedSpace, rng: random.Random) -> Genotype:
    """Every choice uniform, as SPOS samples its single paths."""
    return space.sample(_Picker(lambda _choice, options: rng.choice(options)))


def sandwich(space: FactorizedSpace, rng: random.Random, n_random: int) -> list[Genotype]:
    """[largest, smallest, n_random random networks]: the largest is the teacher of the rest."""
    return [largest(space), smallest(space), *(random_genotype(space, rng) for _ in range(n_random))]


def widest(space: FactorizedSpace, block_type: str) -> Genotype:
    """The largest network whose every stage is a ``block_type`` block (at its largest expansion,
    with SE where the space offers it): it holds that type's weight set of every (stage, block)."""
    ops = [op for op in space.ops if OPS[op][0] == block_type]

    def pick(choice: str, options: list) -> object:
        return max(ops, key=_op_size) if choice == "op" else _largest(choice, options)

    return space.sample(_Picker(pick))
