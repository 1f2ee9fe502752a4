"""Each trial's note and dashboard artifacts without scanning every study attribute per trial.

optuna-dashboard keeps trial notes (and artifacts uploaded from its UI) in the *study's* system
attributes and finds a trial's by scanning all of them, once per trial it serialises: with a note
on every trial that is O(trials^2) per study request (tens of seconds at 5,000 trials). These
lookups give the same answers from one grouping pass per request. They replace two of
optuna-dashboard's functions while ``indexed_lookups`` is active (optuna-dashboard is pinned in
pyproject.toml; tests compare the served study with and without them).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX
from optuna_dashboard import _note, _serializer


class _Grouped:
    """A study's note chunks and dashboard artifact metadata, grouped by trial id in one pass."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.size = len(attrs)
        self.notes: dict[int, dict[str, str]] = defaultdict(dict)
        self.artifacts: dict[int, list[str]] = defaultdict(list)
        for key, value in attrs.items():
            parts = key.split(":", 3)  # dashboard:<trial id>:note_str:<i> | dashboard:artifacts:<trial id>:<id>
            if len(parts) == 4 and parts[0] == "dashboard":
                if parts[2] == "note_str" and parts[1].isdigit():
                    self.notes[int(parts[1])][key] = value
                elif parts[1] == "artifacts" and parts[2].isdigit():
                    self.artifacts[int(parts[2])].append(value)


_lock = threading.Lock()
_last: _Grouped | None = None


def _grouped(attrs: dict[str, Any]) -> _Grouped:
    """The grouping of ``attrs``: one request passes the same dict for every trial."""
    global _last
    with _lock:
        if _last is None or _last.attrs is not attrs or _last.size != len(attrs):
            _last = _Grouped(attrs)
        return _last


def get_note_from_system_attrs(system_attrs: dict[str, Any], trial_id: int | None) -> dict[str, Any]:
    if trial_id is None or _note.note_ver_key(trial_id) not in system_attrs:
        return _ORIGINAL["note"](system_attrs, trial_id)
    chunks = _grouped(system_attrs).notes.get(trial_id, {})
    return {"version": int(system_attrs[_note.note_ver_key(trial_id)]), "body": _note.concat_body(chunks, trial_id)}


def list_trial_artifacts(study_system_attrs: dict[str, Any], trial_system_attrs: dict[str, Any], trial) -> list:
    metas = [json.loads(v) for v in _grouped(study_system_attrs).artifacts.get(trial._trial_id, [])]
    metas += [json.loads(v) for k, v in trial_system_attrs.items() if k.startswith(ARTIFACTS_ATTR_PREFIX)]
    return [meta for meta in metas if meta is not None]


_ORIGINAL = {"note": _note.get_note_from_system_attrs, "artifacts": _serializer.list_trial_artifacts}


@contextmanager
def indexed_lookups() -> Iterator[None]:
    """optuna-dashboard with the grouped lookups, restored on exit."""
    _note.get_note_from_system_attrs = get_note_from_system_attrs
    _serializer.list_trial_artifacts = list_trial_artifacts
    try:
        yield
    finally:
        _note.get_note_from_system_attrs = _ORIGINAL["note"]
        _serializer.list_trial_artifacts = _ORIGINAL["artifacts"]
