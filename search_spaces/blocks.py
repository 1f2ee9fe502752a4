"""One block string of timm's EfficientNet/MobileNetV3 grammar, both ways.

A block string such as ``ir_r2_k5_s2_e6_c40_se0.25_nhs`` is a block type followed by options:
``r`` repeats, ``k`` depthwise kernel, ``a``/``p`` expansion/projection kernel, ``s`` stride,
``e`` expansion ratio, ``c`` output channels, ``se`` squeeze-excite ratio, ``gs`` group size,
``n`` activation and ``skip``/``noskip``. timm's own decoder asserts and silently skips unknown
tokens; this one raises ``ValueError`` naming the bad token, and ``encode`` writes the options
in timm's order so that ``encode(decode(s)) == s`` for every string timm's models use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

BLOCK_TYPES = {
    "ds": "depthwise-separable",
    "dsa": "depthwise-separable, activation after the pointwise conv (MobileNetV1)",
    "ir": "inverted residual (MBConv)",
    "er": "edge residual (fused MBConv)",
    "cn": "regular conv + BN + activation",
}
ACTIVATIONS = {"re": "relu", "r6": "relu6", "hs": "hard_swish", "sw": "swish", "mi": "mish"}
_ACT_CODES = {name: code for code, name in ACTIVATIONS.items()}
_NEEDS_EXPANSION = {"ir", "er"}
_NUMERIC = re.compile(r"^(se|gs|[rkapsec])(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Block:
    """One line of an ``arch_def`` stage: ``repeats`` identical blocks (the first may stride).

    Optional fields are ``None`` when the string leaves them out, so that the string that was
    read is the string that is written back.
    """

    type: str
    repeats: int
    kernel: int
    stride: int
    out_chs: int
    exp_ratio: float | None = None
    se_ratio: float | None = None
    act: str | None = None  # one of ACTIVATIONS' values; None = the network's default
    skip: bool | None = None  # None = residual where shapes allow, False = 'noskip'
    exp_kernel: int | None = None
    pw_kernel: int | None = None
    group_size: int | None = None

    def __post_init__(self) -> None:
        if self.type not in BLOCK_TYPES:
            raise ValueError(f"unknown block type {self.type!r}; expected one of {', '.join(BLOCK_TYPES)}")
        if self.type in _NEEDS_EXPANSION and self.exp_ratio is None:
            raise ValueError(f"block type {self.type!r} needs an expansion ratio ('e' option)")
        if self.act is not None and self.act not in _ACT_CODES:
            raise ValueError(f"unknown activation {self.act!r}; expected one of {', '.join(_ACT_CODES)}")
        for name in ("repeats", "kernel", "stride", "out_chs"):
            if getattr(self, name) < 1:
                raise ValueError(f"block {name} must be >= 1, got {getattr(self, name)}")

    @property
    def expansion(self) -> float:
        """The expansion ratio in effect (timm's default is 1 where the string has none)."""
        return 1.0 if self.exp_ratio is None else self.exp_ratio

    def with_(self, **changes: object) -> Block:
        return replace(self, **changes)


def _num(value: float) -> str:
    return format(value, "g")


def encode(block: Block) -> str:
    """Write ``block`` as a timm block string."""
    parts = [block.type, f"r{block.repeats}", f"k{block.kernel}"]
    if block.exp_kernel is not None:
        parts.append(f"a{block.exp_kernel}")
    if block.pw_kernel is not None:
        parts.append(f"p{block.pw_kernel}")
    parts.append(f"s{block.stride}")
    if block.exp_ratio is not None:
        parts.append(f"e{_num(block.exp_ratio)}")
    parts.append(f"c{block.out_chs}")
    if block.se_ratio is not None:
        parts.append(f"se{_num(block.se_ratio)}")
    if block.group_size is not None:
        parts.append(f"gs{block.group_size}")
    if block.act is not None:
        parts.append(f"n{_ACT_CODES[block.act]}")
    if block.skip is not None:
        parts.append("skip" if block.skip else "noskip")
    return "_".join(parts)


_FIELDS = {"r": "repeats", "k": "kernel", "a": "exp_kernel", "p": "pw_kernel", "s": "stride",
           "e": "exp_ratio", "c": "out_chs", "se": "se_ratio", "gs": "group_size"}
_FLOAT_FIELDS = {"exp_ratio", "se_ratio"}


def decode(block_str: str) -> Block:
    """Read a timm block string; raise ``ValueError`` naming the first bad token."""
    if not isinstance(block_str, str) or not block_str:
        raise ValueError(f"block string must be a non-empty string, got {block_str!r}")
    block_type, *tokens = block_str.split("_")
    if block_type not in BLOCK_TYPES:
        raise ValueError(
            f"bad token {block_type!r} in {block_str!r}: unknown block type; "
            f"expected one of {', '.join(BLOCK_TYPES)}"
        )
    fields: dict[str, object] = {"type": block_type}
    for token in tokens:
        if token in ("skip", "noskip"):
            key, value = "skip", token == "skip"
        elif token.startswith("n") and token[1:] in ACTIVATIONS:
            key, value = "act", ACTIVATIONS[token[1:]]
        elif match := _NUMERIC.match(token):
            key = _FIELDS[match.group(1)]
            raw = match.group(2)
            if key not in _FLOAT_FIELDS and "." in raw:
                raise ValueError(f"bad token {token!r} in {block_str!r}: {key} must be an integer")
            value = float(raw) if key in _FLOAT_FIELDS else int(raw)
        else:
            raise ValueError(
                f"bad token {token!r} in {block_str!r}: expected r<int>, k<int>, s<int>, e<float>, "
                f"c<int>, se<float>, a<int>, p<int>, gs<int>, n{{{','.join(ACTIVATIONS)}}}, skip or noskip"
            )
        if key in fields:
            raise ValueError(f"bad token {token!r} in {block_str!r}: {key} given twice")
        fields[key] = value
    missing = [opt for opt, name in (("r", "repeats"), ("k", "kernel"), ("s", "stride"), ("c", "out_chs"))
               if name not in fields]
    if missing:
        raise ValueError(f"block string {block_str!r} lacks option(s) {', '.join(missing)}")
    try:
        return Block(**fields)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"bad block string {block_str!r}: {err}") from None
