"""One handle on the database, opened once at the boundary (CLI, bench, API caller) and passed down.

It holds the resolved URL, the Optuna storage on it and our own tables' sessions, so no function
below the boundary resolves a URL again or opens a second engine on the same database.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from storage.database import StorageError, absolute_url, check_url, open_optuna_storage, require_database, resolve_url
from storage.schema import read_session, session

if TYPE_CHECKING:
    from optuna.storages import RDBStorage


@dataclass(frozen=True)
class Store:
    """The database of a command: ``Store.open(None)`` is ``$NAS_STORAGE`` or ``sqlite:///nas.db``."""

    url: str
    create: bool = True  # False: a missing SQLite file is an error on first use, never a new empty database

    @classmethod
    def open(cls, url: str | None = None, *, create: bool = True) -> Store:
        """Resolve ``url``; the database is checked (and an SQLite file made) on first use, so a
        command that never reads it (``nas show SEED``) leaves no file behind. Commands that only
        read pass ``create=False``."""
        return cls(resolve_url(url), create)

    def check(self) -> None:
        """Fail now, in one line, if the database cannot be used (before a server starts, say)."""
        check_url(self.url)

    def optuna(self, heartbeat_s: int | None = None) -> RDBStorage:
        """Optuna's storage on this database (one per heartbeat setting, kept for the process)."""
        if not self.create:
            require_database(self.url)
        return _optuna_storage(absolute_url(self.url), heartbeat_s)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction on our own tables: commit on success, else roll back. A reading command's
        store (``create=False``) writes nothing: our tables the database lacks read as empty."""
        if not self.create:
            require_database(self.url)
            with read_session(absolute_url(self.url)) as db:
                yield db
            return
        with session(absolute_url(self.url)) as db:
            yield db

    @contextmanager
    def sole_process(self, refusal: str) -> Iterator[None]:
        """Hold an SQLite database for one process for the block, or raise ``refusal`` (exit 2) at
        once: two processes racing on one file hand a queued trial to both and overshoot the budget,
        where a database server serves many. A lock file beside the database, removed after."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
            yield
            return
        path = f"{os.path.abspath(parsed.database)}.lock"
        try:
            descriptor: int | None = _lock(path)
        except BlockingIOError:
            raise StorageError(refusal) from None
        except OSError:  # no folder, or a read-only one: the database itself says why on first use
            descriptor = None
        try:
            yield
        finally:
            if descriptor is not None:
                with suppress(FileNotFoundError):
                    os.unlink(path)  # before letting go: a process locking it next sees it is gone
                os.close(descriptor)

    def __str__(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)


@lru_cache(maxsize=8)
def _optuna_storage(url: str, heartbeat_s: int | None) -> RDBStorage:
    return open_optuna_storage(url, heartbeat_interval=heartbeat_s)


def _lock(path: str) -> int:
    """An open descriptor of ``path`` locked for this process (``BlockingIOError`` when another holds it).

    Another holder removes the file as it lets go: a file locked after that is checked to still be the
    one at ``path``, else the new one is tried."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(descriptor).st_ino:
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)
