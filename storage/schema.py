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

from storage.database import StorageError, check_url, database_error, engine_kwargs, lock_on_begin


class Base(DeclarativeBase):
    """Metadata of nas's own tables (Optuna's have theirs)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


UTCDateTime = DateTime(timezone=True)


_CREATING = threading.Lock()
# PostgreSQL advisory lock held while one process makes the tables: two processes that CREATE the
# same table at once collide in the catalog ("duplicate key ... pg_type_typname_nsp_index"), which
# no check-first avoids
_TABLES_LOCK = int.from_bytes(b"nas_tabl", "big")


def _sessions(url: str) -> sessionmaker[Session]:
    with _CREATING:  # threads of one process make the tables once
        return _create_tables(url)


@lru_cache(maxsize=16)
def _create_tables(url: str) -> sessionmaker[Session]:
    parsed = check_url(url)
    engine = lock_on_begin(sqlalchemy.create_engine(parsed, **engine_kwargs(parsed)))
    for attempt in range(2):
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":  # released at commit: the next one then sees the tables
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TABLES_LOCK})
                Base.metadata.create_all(connection)
            break
        except (SQLAlchemyError, sqlite3.Error) as err:
            reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
            if attempt == 0 and "already exists" in reason:
                continue  # SQLite: another process made them between our check and our CREATE: check again
            fault = database_error(err, url)
            raise StorageError(f"cannot create nas tables in {fault}", fault.fault) from err
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


@lru_cache(maxsize=16)
def _reader(url: str) -> sqlalchemy.Engine:
    """An engine that makes no table; one connection per session (``NullPool``), so the temporary
    tables of ``read_session`` end with it and never hide tables made later in the process."""
    parsed = check_url(url)
    return sqlalchemy.create_engine(parsed, poolclass=sqlalchemy.NullPool, **engine_kwargs(parsed))


@contextmanager
def read_session(url: str) -> Iterator[Session]:
    """A session for commands that only read: it never writes to the database, so it creates none of
    our tables. Those the database lacks (one only Optuna wrote) read as empty: temporary tables of
    this connection stand in for them, in SQLite's separate temp database or PostgreSQL's session schema."""
    try:
        with _reader(url).connect() as conn:
            present = set(sqlalchemy.inspect(conn).get_table_names())
            stand_ins = sqlalchemy.MetaData()
            for table in Base.metadata.sorted_tables:
                if table.name not in present:  # columns only: a temporary table may not refer to a real one
                    columns = [sqlalchemy.Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns]
                    sqlalchemy.Table(table.name, stand_ins, *columns, prefixes=["TEMPORARY"]).create(conn)
            with Session(bind=conn) as db:
                yield db
    except (SQLAlchemyError, sqlite3.Error) as err:
        raise database_error(err, url) from err


@contextmanager
def session(url: str) -> Iterator[Session]:
    """A transaction on ``url`` (tables created on first use): commit on success, else roll back."""
    factory = _sessions(url)
    try:
        with factory.begin() as db:
            yield db
    except (SQLAlchemyError, sqlite3.Error) as err:
        raise database_error(err, url) from err
