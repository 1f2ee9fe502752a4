"""Our own tables, beside Optuna's in the same database, and the one session boundary.

They live in their own SQLAlchemy metadata with a ``nas_`` prefix, so they never collide with
Optuna's schema (which we never touch). Every database error leaving ``session`` is a
``StorageError`` with a one-line message and the cause attached.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache

import sqlalchemy
from sqlalchemy import DateTime
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from storage.database import StorageError, _engine_kwargs, check_url


class Base(DeclarativeBase):
    """Metadata of nas's own tables (Optuna's have theirs)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


UTCDateTime = DateTime(timezone=True)


@lru_cache(maxsize=16)
def _sessions(url: str) -> sessionmaker[Session]:
    parsed = check_url(url)
    engine = sqlalchemy.create_engine(parsed, **_engine_kwargs(parsed))
    try:
        Base.metadata.create_all(engine)
    except (SQLAlchemyError, sqlite3.Error) as err:
        raise StorageError(f"cannot create nas tables in {parsed.render_as_string(hide_password=True)}: "
                           f"{str(getattr(err, 'orig', err)).strip().splitlines()[0]}") from err
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session(url: str) -> Iterator[Session]:
    """A transaction on ``url`` (tables created on first use): commit on success, else roll back."""
    factory = _sessions(url)
    try:
        with factory.begin() as db:
            yield db
    except (SQLAlchemyError, sqlite3.Error) as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        raise StorageError(f"database error: {reason}") from err
