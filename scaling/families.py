"""Released families by name: the coefficients their authors published for each member."""

from __future__ import annotations

from scaling.compound import Member
from search_spaces import round_resolution

REFERENCE_RESOLUTION = 224  # the base resolution the released input sizes belong to

# EfficientNet B0..B7 (Tan & Le 2019; timm ``_gen_efficientnet``): width, depth, resolution, dropout.
# The published sizes are not all multiples of 8 (260, 300, 380) and are kept as published.
_EFFICIENTNET = ((1.0, 1.0, 224, 0.2), (1.0, 1.1, 240, 0.2), (1.1, 1.2, 260, 0.3), (1.2, 1.4, 300, 0.3),
                 (1.4, 1.8, 380, 0.4), (1.6, 2.2, 456, 0.4), (1.8, 2.6, 528, 0.5), (2.0, 3.1, 600, 0.5))

FAMILIES: dict[str, tuple[Member, ...]] = {
    "efficientnet": tuple(Member(phi, depth, width, resolution, drop)
                          for phi, (width, depth, resolution, drop) in enumerate(_EFFICIENTNET)),
}


def released_family(name: str, base_resolution: int = REFERENCE_RESOLUTION) -> tuple[Member, ...]:
    """The members of a released family; for another base resolution the published sizes are
    scaled in proportion and rounded to a multiple of 8."""
    try:
        members = FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None
    if base_resolution == REFERENCE_RESOLUTION:
        return members
    ratio = base_resolution / REFERENCE_RESOLUTION
    return tuple(Member(m.phi, m.depth, m.width, round_resolution(m.resolution * ratio), m.drop_rate) for m in members)
