"""One refinement of a study at a time, and what a killed one left RUNNING.

Refine asks and tells its own trials (``Study.ask``/``tell``), so Optuna's heartbeat, which only
``Study.optimize`` beats, never reaps a trial that a killed run left RUNNING. A per-study lock held
for the whole run makes reaping safe: whoever holds it is the only refinement working on the study,
so a trial still RUNNING when it starts was left by a process that is gone.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from filelock import FileLock, Timeout
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from nas.errors import UsageError
from nas.study import HEARTBEAT_S
from storage import INTERRUPTED, Store, StoredTrial, write_trial


def lock_path(store: Store, study: str) -> Path:
    """A lock file in the temp folder, keyed by the database and the study: an SQLite file by its
    absolute path, so runs from different working directories share the lock."""
    url = make_url(store.url)
    database = url.database if url.get_backend_name() == "sqlite" else None
    identity = str(Path(database).resolve()) if database and database != ":memory:" else store.url
    key = hashlib.sha256(f"{identity}\n{study}".encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"nas-refine-{key}.lock"


@contextmanager
def study_lock(store: Store, study: str) -> Iterator[None]:
    """Hold the study's lock; a refinement already holding it is a usage error, not a wait."""
    lock = FileLock(str(lock_path(store, study)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"another `nas refine` is working on study {study!r} (lock {lock.lock_file}); "
                         "wait for it to finish, or pass another --refine-study") from None
    try:
        yield
    finally:
        lock.release()


def fail_abandoned(study: optuna.Study, store: Store) -> None:
    """Mark every RUNNING trial FAIL, ``interrupted`` (refine scores it again); call it under the lock."""
    storage = store.optuna(HEARTBEAT_S)  # the study's own storage (one per process)
    study_id = storage.get_study_id_from_name(study.study_name)
    numbers = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    for number in numbers:
        write_trial(StoredTrial(storage, storage.get_trial_id_from_study_id_trial_number(study_id, number)),
                    fail_reason=INTERRUPTED)
        study.tell(number, state=TrialState.FAIL)
