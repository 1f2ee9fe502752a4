"""What the scaling grid and the scaled families share: a scaled network's name and input size."""

from __future__ import annotations

from dataclasses import asdict

from nas.architecture import Architecture
from nas.errors import UsageError
from scaling import Coefficients, Member, scale


def scaled_architecture(base: Architecture, member: Member, coefficients: Coefficients | None,
                        family: str | None, base_resolution: int) -> Architecture:
    """``base`` scaled to ``member``, named ``BASE@phi=N``, with where it came from."""
    provenance = {"base": base.name, "base_resolution": base_resolution, **coefficient_fields(coefficients),
                  "family": family, "phi": member.phi, "depth": member.depth, "width": member.width,
                  "drop_rate": member.drop_rate}
    if base.provenance:
        provenance["base_provenance"] = base.provenance
    return Architecture(f"{base.name}@phi={member.phi}", scale(base.genotype, member), member.resolution, provenance)


def coefficient_fields(coefficients: Coefficients | None) -> dict[str, float | None]:
    """alpha, beta, gamma always present (None for a released family, which publishes multipliers)."""
    return asdict(coefficients) if coefficients else {"alpha": None, "beta": None, "gamma": None}


def base_resolution(base: Architecture, resolution: int | None) -> int:
    value = resolution or base.input_size()
    if not 32 <= value <= 1024:
        raise UsageError(f"--resolution must be between 32 and 1024 pixels, got {value}")
    return value
