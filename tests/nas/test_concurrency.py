"""Two commands at once on one database: joined or serialised, never a duplicate (issue 14)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import uuid

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from nas.errors import EXIT_TERMINATED

from conftest import NAS, ONE_WORKER, cli_env, wait_for

pytestmark = pytest.mark.slow  # real `nas` processes


def _env() -> dict[str, str]:
    return {**cli_env(), "OMP_NUM_THREADS": "1"}


def _trials(db) -> list[tuple]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select number, state from trials order by number").fetchall()
    except sqlite3.OperationalError:  # Optuna's tables not made yet
        return []


def test_a_second_search_on_one_sqlite_file_joins_the_first(nas_cli, spawn):
    args = ["search", "--space", "tiny", "--target-latency", "2ms", "--estimator", "params", "--resolution", "32",
            "--latency", "measure", *ONE_WORKER]
    db = nas_cli.cwd / "nas.db"
    first = spawn([*NAS, *args, "--trials", "100000"], cwd=nas_cli.cwd, env=_env(), stdout=subprocess.DEVNULL,
                  stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (db.exists() and len(_trials(db)) >= 2) or first.poll() is not None, timeout=300)
    assert first.poll() is None, first.stderr.read()

    goal = len(_trials(db)) + 40  # the study's size: the second stops once it holds this many finished trials
    joined = nas_cli.json(*args, "--trials", str(goal))
    assert joined["ran"] >= 1 and first.poll() is None  # both ran trials of one study at once

    os.killpg(first.pid, signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == EXIT_TERMINATED, err
    trials = _trials(db)
    assert [n for n, _ in trials] == list(range(len(trials)))  # no number handed out twice
    assert sum(state == "COMPLETE" for _, state in trials) >= goal
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from studies").fetchone()[0] == 1
        warm = conn.execute("select count(*) from trial_user_attributes where key = 'warm_start'").fetchone()[0]
    assert warm == 1  # the queued skeleton network ran once
    assert nas_cli(*args, "--trials", "1").returncode == 0  # the same command resumes (nothing left to run)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A database with nothing in it: a new SQLite file, or a new database on the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nas.db'}"
        return
    server, name = request.getfixturevalue("postgres_url"), f"race_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def test_two_latency_builds_at_once_make_one_table_without_duplicate_rows(empty_database, tmp_path, spawn):
    args = [*NAS, "latency", "build", "--space", "tiny", "--resolution", "32", "--calibration", "5",
            "--storage", empty_database, "--json"]
    builds = [spawn(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    for build in builds:
        _, err = build.communicate(timeout=600)
        assert build.returncode == 0, err
    engine = sqlalchemy.create_engine(empty_database)
    with engine.connect() as conn:
        tables = conn.exec_driver_sql("select id from nas_latency_tables").all()
        entries = conn.exec_driver_sql("select table_id, key, passes from nas_latency_entries").all()
        models = conn.exec_driver_sql("select table_id, space from nas_latency_models").all()
    engine.dispose()
    assert len(tables) == 1
    assert entries and len({(table, key) for table, key, _ in entries}) == len(entries)
    assert {passes for *_, passes in entries} == {3}  # every round of every layer counted (3: the default)
    assert models == [(tables[0][0], "tiny")]
