"""Turn a storage URL into a checked SQLAlchemy engine and an Optuna ``RDBStorage``."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import warnings
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

DEFAULT_URL = "sqlite:///nas.db"
ENV_VAR = "NAS_STORAGE"
_SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_BUSY_TIMEOUT_S = 60  # parallel workers on one SQLite file wait instead of failing


FAULTS = ("usage", "unreachable", "auth", "corrupt", "read_only", "full")  # what a StorageError's ``fault`` can be
_FAULT_SIGNS = (  # first match wins: driver messages (SQLite, psycopg) that tell the fault apart
    ("full", ("database or disk is full", "no space left", "disk full")),
    ("read_only", ("readonly database", "read-only", "permission denied")),
    ("corrupt", ("not a database", "malformed", "file is encrypted", "not an sqlite database")),
    ("auth", ("authentication failed", "no password supplied", "password", 'role "')),
)
_ADVICE = {
    "unreachable": "check the host, port and database name in --storage, and that the server runs",
    "auth": "check the user and password in --storage",
    "corrupt": "restore it from a copy or pass another --storage",
    "read_only": "make the file and its folder writable, or pass another --storage",
    "full": "free disk space (nothing stored so far is lost), then run the same command again",
}


class StorageError(Exception):
    """The database cannot be used: a bad URL, an unreachable server, a file that is no database.

    ``fault`` (one of ``FAULTS``) tells the faults apart, so the CLI can give each its exit code.
    """

    def __init__(self, message: str, fault: str = "usage") -> None:
        super().__init__(message)
        self.fault = fault


def database_error(err: BaseException, url: str | None = None) -> StorageError:
    """A driver's or Optuna's database error as one line, its fault named and the fix said,
    with no password in it."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, (SQLAlchemyError, sqlite3.Error)):  # Optuna wraps it, or
        cause = cause.__cause__ or cause.__context__  # fails in its own handler (an UnboundLocalError, seen)
    if isinstance(cause, ArgumentError):  # a URL parsed before check_url saw it
        return StorageError(f"not a database URL: {_redact(url or '')!r}; expected e.g. sqlite:///nas.db or "
                            "postgresql+psycopg://user:pass@host/db")
    cause = getattr(cause, "orig", None) or cause or err  # the driver's own error
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    reason = lines[0]
    fault = next((kind for kind, signs in _FAULT_SIGNS if any(s in reason.lower() for s in signs)), "unreachable")
    where = "database"
    parsed = _parsed_or_none(url)
    if parsed is not None:
        where = f"database {parsed.render_as_string(hide_password=True)}"
        if parsed.password:
            reason = reason.replace(str(parsed.password), "***")
        if parsed.get_backend_name() == "sqlite" and parsed.database and fault in ("unreachable", "read_only"):
            folder = Path(parsed.database).resolve().parent
            if folder.exists() and shutil.disk_usage(folder).free < 2**20:  # no room for its journal: "readonly"
                fault = "full"
            elif not os.access(folder, os.W_OK):  # SQLite says "unable to open" when it cannot write its journal
                fault = "read_only"
    return StorageError(f"{where}: {reason}; {_ADVICE[fault]}", fault)


def _parsed_or_none(url: str | None) -> sqlalchemy.URL | None:
    try:
        return make_url(url) if url is not None else None
    except ArgumentError:
        return None


def absolute_url(url: str) -> str:
    """``url`` with a relative SQLite path made absolute, so a process that changes folder (tests
    running commands in-process) never reuses an engine opened on another folder's file."""
    parsed = _parsed_or_none(url)
    database = parsed.database if parsed is not None else None
    if parsed is None or parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)


def resolve_url(url: str | None) -> str:
    """The explicit URL, else ``$NAS_STORAGE``, else ``sqlite:///nas.db``."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def _check_sqlite_file(database: str | None) -> None:
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.is_dir():
        raise StorageError(f"{path} is a directory, not an SQLite database file")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            if fh.read(16) != _SQLITE_MAGIC:
                raise StorageError(f"{path} is not an SQLite database; pass another --storage file", "corrupt")
    elif not path.parent.exists():
        raise StorageError(f"cannot create {path}: folder {path.parent} does not exist")


def _redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, even when it does not parse."""
    return re.sub(r"(://[^:/@\s]*:)\S*@", r"\1***@", url)  # greedy: a password may hold an @


def require_database(url: str) -> None:
    """Refuse a missing SQLite file instead of creating an empty database (commands that only read)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # check_url says what is wrong with it
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and not Path(database).exists():
        raise StorageError(f"no database at {database}: nothing to read; pass the --storage a search wrote "
                           "(or set $NAS_STORAGE)")


def check_url(url: str) -> sqlalchemy.URL:
    """Parse ``url`` and make sure a database answers there, without creating any table."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            f"not a database URL: {_redact(url)!r}; expected e.g. sqlite:///nas.db or "
            "postgresql+psycopg://user:pass@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(parsed.database)
    try:
        engine = sqlalchemy.create_engine(parsed, **engine_kwargs(parsed))
    except NoSuchModuleError:
        raise StorageError(f"unknown database kind {parsed.drivername!r} in {_redact(url)!r}; expected sqlite:///FILE or "
                           "postgresql+psycopg://user:pass@host/db") from None
    try:
        with engine.connect() as conn:
            if parsed.get_backend_name() == "sqlite":
                conn.exec_driver_sql("PRAGMA schema_version")  # reads the header: fails on non-databases
            else:
                conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, sqlite3.Error) as err:
        fault = database_error(err, url)
        raise StorageError(f"cannot open {fault}", fault.fault) from err
    except ModuleNotFoundError as err:
        raise StorageError(f"no driver for {parsed.drivername!r}: {err}; install it or use sqlite:///FILE") from err
    finally:
        engine.dispose()
    return parsed


def engine_kwargs(parsed: sqlalchemy.URL) -> dict:
    if parsed.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}


def lock_on_begin(engine: sqlalchemy.Engine) -> sqlalchemy.Engine:
    """Make every transaction of an SQLite ``engine`` take the file's write lock as it begins.

    Python's sqlite3 begins a transaction only at the first write, so the read before it is not
    part of it: two workers both read a queued trial as WAITING and both run it (6 of 10 rounds
    here). Begun with ``BEGIN IMMEDIATE``, the second waits for the first to commit and reads it
    RUNNING, as on a database server; so SQLite serves parallel workers. The driver sees the
    transaction open and begins none of its own. Other databases: unchanged.
    """
    if engine.dialect.name == "sqlite":
        sqlalchemy.event.listen(engine, "begin", _begin_immediate)
    return engine


def _begin_immediate(connection: sqlalchemy.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_optuna_storage(url: str, *, heartbeat_interval: int | None = None):
    """An Optuna ``RDBStorage`` on ``url``, checked first; creates Optuna's tables if absent.

    With a heartbeat, a trial whose process died (kill -9, power loss) is marked FAIL by the
    next worker instead of staying RUNNING forever, and queued once more to be run again.
    """
    import optuna  # deferred: importing Optuna costs ~1 s, and `check_url` callers need none of it

    parsed = check_url(url)
    try:
        with warnings.catch_warnings():  # heartbeat and its retry callback are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            heartbeat = {}
            if heartbeat_interval:
                heartbeat = {
                    "heartbeat_interval": heartbeat_interval, "grace_period": 3 * heartbeat_interval,
                    "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
                }
            storage = optuna.storages.RDBStorage(
                parsed.render_as_string(hide_password=False), engine_kwargs=engine_kwargs(parsed), **heartbeat
            )
    except (SQLAlchemyError, sqlite3.Error, RuntimeError) as err:
        fault = database_error(err, url)
        raise StorageError(f"cannot use {fault}", fault.fault) from err
    lock_on_begin(storage.engine)  # Optuna makes its engine itself: its tables are made by now, each statement alone
    return storage
