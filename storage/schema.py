"""Our own tables, beside Optuna's in the same database, and the one session boundary.

They live in their own SQLAlchemy metadata with a ``nas_`` prefix, so they never collide with
Optuna's schema (which we never touch). Every database error leaving ``session`` is a
``StorageError`` with a one-line message and the cause attached.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
from sqlalchemy import DateTime
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from storage.database import StorageError, engine_kwargs, check_url


class Base(DeclarativeBase):
    """Metadata of nas's own tables (Optuna's have theirs)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


UTCDateTime = DateTime(timezone=True)


_CREATING = threading.Lock()


def _sessions(url: str) -> sessionmaker[Session]:
    with _CREATING:  # threads of one process make the tables once
        return _create_tables(url)


@lru_cache(maxsize=16)
def _create_tables(url: str) -> sessionmaker[Session]:
    parsed = check_url(url)
    engine = sqlalchemy.create_engine(parsed, **engine_kwargs(parsed))
    for attempt in range(2):
        try:
            Base.metadata.create_all(engine)
            break
        except (SQLAlchemyError, sqlite3.Error) as err:
            reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
            if attempt == 0 and "already exists" in reason:
                continue  # another process made them between our check and our CREATE: check again
            raise StorageError(f"cannot create nas tables in {parsed.render_as_string(hide_password=True)}: "
                               f"{reason}") from err
    return sessionmaker(engine, expire_on_commit=False)


def upsert(db: Session, table: type[Base], keys: dict[str, Any], values: dict[str, Any], update: bool = True) -> None:
    """Insert the row ``keys | values``, or where ``keys`` (a unique constraint) already has one,
    update ``values`` (or keep the row, ``update=False``): one statement, so two workers storing
    the same row cannot race."""
    module = sqlalchemy.dialects.postgresql if db.get_bind().dialect.name == "postgresql" else sqlalchemy.dialects.sqlite
    statement = module.insert(table).values(**keys, **values)
    if update:
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    db.execute(statement)


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
