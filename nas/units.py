"""Quantities with units, as users type them: ``20ms``, ``1.5 s``, ``800us``, ``30m``."""

from __future__ import annotations

import math
import re

from nas.errors import UsageError

_LATENCY_UNITS_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_DURATION_UNITS_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_QUANTITY = re.compile(r"^\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*([a-zµ]*)\s*$")


def _parse(text: str, units: dict[str, float], flag: str, example: str) -> float:
    accepted = ", ".join(units)
    match = _QUANTITY.match(str(text))
    if not match:
        raise UsageError(f"{flag}: {text!r} is not a number with a unit; write e.g. {example} (units: {accepted})")
    number, unit = float(match.group(1)), match.group(2)
    if not unit:
        raise UsageError(f"{flag}: {text!r} has no unit; write e.g. {example} (units: {accepted})")
    if unit not in units:
        raise UsageError(f"{flag}: unknown unit {unit!r} in {text!r}; units: {accepted}")
    value = number * units[unit]  # checked after the unit: 1e305s overflows in ms, 1e-320us vanishes
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag}: {text!r} must be greater than zero and finite")
    return value


def parse_latency_ms(text: str, flag: str = "--target-latency") -> float:
    """``'20ms'`` -> 20.0; a bare number, a non-positive value or an unknown unit is refused."""
    return _parse(text, _LATENCY_UNITS_MS, flag, "20ms")


def parse_duration_s(text: str, flag: str = "--timeout") -> float:
    """``'30m'`` -> 1800.0."""
    return _parse(text, _DURATION_UNITS_S, flag, "30m")
