"""Architecture files: a genotype with the input size it is meant for and where it came from.

One JSON format for everything that writes or reads a network (``nas export --format json``,
``nas scale family``, ``nas show``/``train``/``latency predict``). The block strings sit under
the storage contract's ``arch_def`` key, so timm alone can build it (README shows how).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import UsageError
from nas.files import replace_atomically
from search_spaces import Genotype

FORMAT = "nas-architecture/1"


@dataclass(frozen=True)
class Architecture:
    name: str  # a seed name, "study/trial", a family member ("efficientnet_b0@phi=3") or a file
    genotype: Genotype
    resolution: int | None = None  # the input size it was designed or scaled for; None: any
    provenance: dict[str, Any] = field(default_factory=dict)  # study, trial, device, latency, accuracy...

    def input_size(self, default: int = 224) -> int:
        return self.resolution or default

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, **self.genotype.to_dict(), "resolution": self.resolution,
                "provenance": self.provenance}

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str) -> Architecture:
        genotype = Genotype.from_dict(data)
        resolution = data.get("resolution")
        if resolution is not None and (not isinstance(resolution, int) or resolution < 8):
            raise ValueError(f"resolution must be an integer >= 8, got {resolution!r}")
        return cls(data.get("name") or name, genotype, resolution, dict(data.get("provenance") or {}))


def read_architecture(path: Path) -> Architecture:
    """Load an architecture file; a file that is not one is a one-line ``UsageError``."""
    try:
        return Architecture.from_dict(json.loads(path.read_text()), name=path.stem)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError, RecursionError) as err:
        raise UsageError(f"{path}: not an architecture file: {err}") from None


def write_architecture(arch: Architecture, path: Path) -> Path:
    """Write atomically (temporary file, fsync, rename): a crash never leaves half a file."""
    return replace_atomically(lambda tmp: Path(tmp).write_text(json.dumps(arch.to_dict(), indent=2) + "\n"), path)
