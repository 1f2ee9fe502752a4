"""One handle on the database, opened once at the boundary (CLI, bench, API caller) and passed down.

It holds the resolved URL, the Optuna storage on it and our own tables' sessions, so no function
below the boundary resolves a URL again or opens a second engine on the same database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from storage.database import absolute_url, check_url, open_optuna_storage, require_database, resolve_url
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

    def __str__(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)


@lru_cache(maxsize=8)
def _optuna_storage(url: str, heartbeat_s: int | None) -> RDBStorage:
    return open_optuna_storage(url, heartbeat_interval=heartbeat_s)

