"""Turn a storage URL into a checked SQLAlchemy engine and an Optuna ``RDBStorage``."""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

DEFAULT_URL = "sqlite:///nas.db"
ENV_VAR = "NAS_STORAGE"
_SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_BUSY_TIMEOUT_S = 60  # parallel workers on one SQLite file wait instead of failing


class StorageError(Exception):
    """The database cannot be used: a bad URL, an unreachable server, a file that is no database."""


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
                raise StorageError(f"{path} is not an SQLite database; pass another --storage file")
    elif not path.parent.exists():
        raise StorageError(f"cannot create {path}: folder {path.parent} does not exist")


def check_url(url: str) -> sqlalchemy.URL:
    """Parse ``url`` and make sure a database answers there, without creating any table."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            f"not a database URL: {url!r}; expected e.g. sqlite:///nas.db or "
            "postgresql+psycopg://user:pass@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(parsed.database)
    engine = sqlalchemy.create_engine(parsed, **engine_kwargs(parsed))
    try:
        with engine.connect() as conn:
            if parsed.get_backend_name() == "sqlite":
                conn.exec_driver_sql("PRAGMA schema_version")  # reads the header: fails on non-databases
            else:
                conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, sqlite3.Error) as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        raise StorageError(f"cannot open database {parsed.render_as_string(hide_password=True)}: {reason}") from err
    except ModuleNotFoundError as err:
        raise StorageError(f"no driver for {parsed.drivername!r}: {err}; install it or use sqlite:///FILE") from err
    finally:
        engine.dispose()
    return parsed


def engine_kwargs(parsed: sqlalchemy.URL) -> dict:
    if parsed.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}


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
            return optuna.storages.RDBStorage(
                parsed.render_as_string(hide_password=False), engine_kwargs=engine_kwargs(parsed), **heartbeat
            )
    except (SQLAlchemyError, sqlite3.Error, RuntimeError) as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        raise StorageError(f"cannot use {parsed.render_as_string(hide_password=True)} as Optuna storage: {reason}") from err
