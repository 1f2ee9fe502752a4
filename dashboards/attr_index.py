"""Each trial's note and dashboard artifacts without scanning every study attribute per trial.

optuna-dashboard keeps trial notes (and artifacts uploaded from its UI) in the *study's* system
attributes and finds a trial's by scanning all of them, once per trial it serialises: with a note
on every trial that is O(trials^2) per study request (tens of seconds at 5,000 trials). These
lookups give the same answers from one grouping pass per request.

optuna-dashboard offers no hook for this, so ``install`` replaces its two lookups once for the
process (optuna-dashboard is pinned in pyproject.toml; tests compare the served study with and
without). The replacements consult the index of the request in progress in *this* thread or
context (``indexed_request``) and defer to the originals elsewhere, so a threaded server can run
indexed and plain requests side by side and nothing is ever swapped back mid-request.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from optuna_dashboard import _note, _serializer


class _Grouped:
    """A study's note chunks and dashboard artifact metadata, grouped by trial id in one pass."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs  # held, so its id() cannot be reused by another dict during the request
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


class _RequestIndex:
    """The groupings made during one request: it passes the same study attributes for every trial."""

    def __init__(self) -> None:
        self._grouped: dict[int, _Grouped] = {}

    def grouped(self, attrs: dict[str, Any]) -> _Grouped:
        found = self._grouped.get(id(attrs))
        if found is None or found.attrs is not attrs or found.size != len(attrs):
            found = self._grouped[id(attrs)] = _Grouped(attrs)
        return found


_ORIGINAL_NOTE = _note.get_note_from_system_attrs
_ORIGINAL_ARTIFACTS = _serializer.list_trial_artifacts
_active: ContextVar[_RequestIndex | None] = ContextVar("nas_dashboard_request_index", default=None)


def get_note_from_system_attrs(system_attrs: dict[str, Any], trial_id: int | None) -> dict[str, Any]:
    index = _active.get()
    if index is None or trial_id is None or _note.note_ver_key(trial_id) not in system_attrs:
        return _ORIGINAL_NOTE(system_attrs, trial_id)
    chunks = index.grouped(system_attrs).notes.get(trial_id, {})
    return {"version": int(system_attrs[_note.note_ver_key(trial_id)]), "body": _note.concat_body(chunks, trial_id)}


def list_trial_artifacts(study_system_attrs: dict[str, Any], trial_system_attrs: dict[str, Any], trial: Any) -> list:
    index = _active.get()
    if index is None:
        return _ORIGINAL_ARTIFACTS(study_system_attrs, trial_system_attrs, trial)
    kept_by_study = [json.loads(v) for v in index.grouped(study_system_attrs).artifacts.get(trial._trial_id, [])]
    # the trial's own artifacts (optuna.artifacts) cost one trial's attributes: the original reads them
    return [meta for meta in kept_by_study if meta is not None] + _ORIGINAL_ARTIFACTS({}, trial_system_attrs, trial)


def install() -> None:
    """Put the indexed lookups into optuna-dashboard for the rest of the process (idempotent):
    outside an ``indexed_request`` they answer as the originals do."""
    _note.get_note_from_system_attrs = get_note_from_system_attrs
    _serializer.list_trial_artifacts = list_trial_artifacts


@contextmanager
def indexed_request() -> Iterator[None]:
    """Answer the lookups made inside (by this thread or context) from one grouping per study,
    once ``install`` has put them in place."""
    token = _active.set(_RequestIndex())
    try:
        yield
    finally:
        _active.reset(token)
