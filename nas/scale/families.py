"""Scaled families: one network per phi from compound coefficients or a released family (B0..B7),
written as architecture files and stored as ``scale`` runs, and one scaled network on its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nas.architecture import Architecture, write_architecture
from nas.errors import UsageError
from nas.latency import LatencySettings, device_fingerprint, find_predictor, measure_network
from nas.metrics import count_size
from nas.results import resolve_architecture
from nas.scale.common import base_resolution as checked_resolution
from nas.scale.common import coefficient_fields, scaled_architecture
from scaling import EFFICIENTNET_COEFFICIENTS, FAMILIES, Coefficients, Member, released_family
from storage import Store, add_run, list_runs


def parse_phis(text: str) -> tuple[int, ...]:
    """``'3'`` -> (3,); ``'1..7'`` -> (1, ..., 7); a negative phi or a reversed range is refused."""
    low, sep, high = text.partition("..")
    try:
        first, last = int(low), int(high) if sep else int(low)
    except ValueError:
        raise UsageError(f"--phi: {text!r} is not a phi or a range; write e.g. 3 or 1..7") from None
    if first < 0:
        raise UsageError(f"--phi must be >= 0, got {first}")
    if last < first:
        raise UsageError(f"--phi: empty range {text!r}; write LOW..HIGH with LOW <= HIGH")
    return tuple(range(first, last + 1))


def family_members(coefficients: Coefficients | None, family: str | None, phis: tuple[int, ...],
                   base_resolution: int) -> list[Member]:
    """The members for ``phis`` from the coefficients or from the released family ``family``."""
    if family is None:
        return [(coefficients or EFFICIENTNET_COEFFICIENTS).at(phi, base_resolution) for phi in phis]
    try:
        members = released_family(family, base_resolution)
    except ValueError as err:
        raise UsageError(f"--family: {err}") from None
    missing = [phi for phi in phis if phi >= len(members)]
    if missing:
        raise UsageError(f"--phi: family {family!r} has phi 0..{len(members) - 1}, not {missing[0]}")
    return [members[phi] for phi in phis]


def coefficients_from(alpha: float | None, beta: float | None, gamma: float | None,
                      family: str | None) -> Coefficients | None:
    """The coefficients given (EfficientNet's for those left out), or None for a released family."""
    given = [v for v in (alpha, beta, gamma) if v is not None]
    if family is not None:
        if given:
            raise UsageError("give --family or --alpha/--beta/--gamma, not both")
        if family not in FAMILIES:
            raise UsageError(f"--family: unknown family {family!r}; known: {', '.join(FAMILIES)}")
        return None
    default = EFFICIENTNET_COEFFICIENTS
    try:
        return Coefficients(default.alpha if alpha is None else alpha, default.beta if beta is None else beta,
                            default.gamma if gamma is None else gamma)
    except ValueError as err:
        raise UsageError(f"--{str(err).split()[0]}: {err}") from None


@dataclass(frozen=True)
class FamilyConfig:
    base: str
    coefficients: Coefficients | None = EFFICIENTNET_COEFFICIENTS  # None: the released ``family``
    family: str | None = None
    phis: tuple[int, ...] = tuple(range(8))
    resolution: int | None = None  # the base's input size; None: the base's own, else 224
    measure: bool = True
    latency: LatencySettings = field(default_factory=LatencySettings)  # threads and runs; resolution per member
    out_dir: Path | None = None  # None: family-<base>/
    base_study: str | None = None

    def __post_init__(self) -> None:
        if (self.coefficients is None) == (self.family is None):
            raise UsageError("give either coefficients or a released --family")
        if not self.phis or min(self.phis) < 0:
            raise UsageError(f"--phi must be >= 0, got {min(self.phis, default=None)}")


@dataclass(frozen=True)
class FamilyRow:
    phi: int
    name: str
    path: Path
    depth: float  # multipliers of the base
    width: float
    resolution: int
    blocks: int
    stem_size: int
    num_features: int
    params: int
    macs: int
    macs_ratio: float  # to the base (phi = 0) at its resolution
    expected_ratio: float  # 2^phi, what the FLOPs constraint aims for
    latency_ms: float | None
    latency_spread_ms: float | None
    predicted_ms: float | None  # from this device's latency table at the member's resolution, if built
    drop_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def _run_key(name: str, architecture: dict, resolution: int, device: dict | None) -> str:
    return json.dumps([name, architecture, resolution, device], sort_keys=True)


def build_family(config: FamilyConfig, store: Store,
                 on_member: Callable[[FamilyRow], None] | None = None) -> list[FamilyRow]:
    """Write one architecture file per phi, store each member as a ``scale`` run, return the rows.

    Running the same command again rewrites the files but stores no run twice.
    """
    base = resolve_architecture(config.base, store, config.base_study)
    base_resolution = checked_resolution(base, config.resolution)
    members = family_members(config.coefficients, config.family, config.phis, base_resolution)
    out_dir = config.out_dir or Path(f"family-{base.name.replace('/', '-')}")
    stored = {_run_key(r.name, r.architecture, r.resolution, r.device) for r in list_runs(store, kind="scale")}
    _, base_macs = count_size(base.genotype, base_resolution)
    rows = []
    for member in members:
        arch = scaled_architecture(base, member, config.coefficients, config.family, base_resolution)
        params, macs = count_size(arch.genotype, member.resolution)
        measured = device = None
        if config.measure:
            latency = replace(config.latency, resolution=member.resolution)
            measured = measure_network(arch.genotype, latency)
            device = device_fingerprint(latency)
        predictor = find_predictor(store, replace(config.latency, resolution=member.resolution))
        predicted = predictor(arch.genotype) if predictor and not predictor.missing(arch.genotype) else None
        path = write_architecture(arch, out_dir / f"{base.name.replace('/', '-')}-phi{member.phi}.json")
        row = FamilyRow(member.phi, arch.name, path, member.depth, member.width, member.resolution,
                        arch.genotype.depth, arch.genotype.stem_size, arch.genotype.num_features, params, macs,
                        macs / base_macs, 2.0**member.phi, measured.latency_ms if measured else None,
                        measured.spread_ms if measured else None, predicted, member.drop_rate)
        if _run_key(arch.name, arch.to_dict(), member.resolution, device) not in stored:
            add_run(store, kind="scale", name=arch.name, study=base.provenance.get("study"),
                    trial=base.provenance.get("trial"), architecture=arch.to_dict(), resolution=member.resolution,
                    params=params, macs=macs, latency_ms=row.latency_ms, latency_spread_ms=row.latency_spread_ms,
                    device=device,
                    settings={**coefficient_fields(config.coefficients), "family": config.family,
                              "phi": member.phi, "depth": member.depth, "width": member.width,
                              "drop_rate": member.drop_rate, "base": base.name, "base_resolution": base_resolution})
        rows.append(row)
        if on_member is not None:
            on_member(row)
    return rows


def show_scaled(base_ref: str, phi: int, coefficients: Coefficients | None, family: str | None, store: Store,
                resolution: int | None = None, base_study: str | None = None) -> tuple[Architecture, int, int]:
    """One member of a family with its params and MACs at its resolution; nothing is written."""
    if phi < 0:
        raise UsageError(f"--phi must be >= 0, got {phi}")
    base = resolve_architecture(base_ref, store, base_study)
    base_resolution = checked_resolution(base, resolution)
    (member,) = family_members(coefficients, family, (phi,), base_resolution)
    arch = scaled_architecture(base, member, coefficients, family, base_resolution)
    return (arch, *count_size(arch.genotype, member.resolution))

