"""Training checkpoints: one safetensors file whose header carries our JSON state.

Tensors (model, EMA and optimizer state) are safetensors, so loading one never unpickles code;
the JSON state (epoch, step, settings, architecture, history) sits in the file's own metadata, so
weights and state can never disagree. Writes are atomic (temporary file, fsync, rename): a kill
during a write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from nas.errors import UsageError
from nas.files import replace_atomically

FORMAT = "nas-checkpoint/1"
CHECKPOINT_NAME = "checkpoint.safetensors"  # in a `nas train` output folder
_META_KEY = "nas"


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``state`` to ``path`` atomically."""
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    metadata = {_META_KEY: json.dumps({"format": FORMAT, **state})}
    return replace_atomically(lambda tmp: save_file(tensors, tmp, metadata=metadata), path)


def read_state(path: Path) -> dict[str, Any]:
    """The JSON state of one of our checkpoints; anything else is a one-line ``UsageError``."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        state = json.loads(metadata[_META_KEY])
    except FileNotFoundError:
        raise UsageError(f"{path}: no such checkpoint") from None
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: not a nas checkpoint (expected a safetensors file written by `nas train`): "
                         f"{type(err).__name__}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{path}: not a nas checkpoint (format {state.get('format') if isinstance(state, dict) else None!r}, "
                         f"expected {FORMAT!r})")
    return state


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, state) of one of our checkpoints."""
    state = read_state(path)
    return load_file(str(path)), state


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.`` with the prefix removed (a module's state dict)."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def pack_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as safetensors tensors plus JSON (no pickle)."""
    saved = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in saved["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": saved["param_groups"], "scalars": scalars}


def unpack_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], packed: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in prefixed(tensors, "optim").items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for name, value in packed["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": packed["param_groups"]})
