"""Ctrl-C and SIGTERM held out of the database layer and never lost: real signals to this process,
real SQLite files, real Optuna studies."""

import os
import random
import signal
import sqlite3
import sys
import threading
import time

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from nas.interrupts import Interrupts


def _spin(seconds: float) -> None:
    """Work in Python (an interrupt lands between its lines, as in a training step)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _table(tmp_path) -> sqlalchemy.Engine:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("create table t (x int)")
    return engine


def _rows(tmp_path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "x.db", timeout=0) as conn:  # timeout 0: a lock left behind fails at once
        conn.execute("insert into t values (2)")
        return conn.execute("select x from t").fetchall()


def test_an_interrupt_inside_a_database_call_is_raised_once_the_call_returns(tmp_path):
    engine, ran = _table(tmp_path), []
    # SQLAlchemy calls these in the middle of its execute; the interrupt lands inside the first
    sqlalchemy.event.listen(engine, "before_cursor_execute", lambda *_: (os.kill(os.getpid(), signal.SIGINT), _spin(0.1)))
    sqlalchemy.event.listen(engine, "after_cursor_execute", lambda conn, cursor, statement, *_: ran.append(statement))
    with Interrupts().installed(), pytest.raises(KeyboardInterrupt):
        with engine.begin() as conn:
            conn.exec_driver_sql("insert into t values (1)")
            _spin(5)
    assert ran == ["insert into t values (1)"]  # the statement ran to its end: the interrupt waited for it
    engine.dispose()
    assert _rows(tmp_path) == [(2,)]  # ... and came before the commit: rolled back, nothing left locked


def test_an_interrupt_held_too_long_is_raised_where_it_lands(tmp_path):
    engine, ran = _table(tmp_path), []
    sqlalchemy.event.listen(engine, "before_cursor_execute", lambda *_: (os.kill(os.getpid(), signal.SIGINT), _spin(5)))
    sqlalchemy.event.listen(engine, "after_cursor_execute", lambda conn, cursor, statement, *_: ran.append(statement))
    with Interrupts(force_s=0.2).installed(), pytest.raises(KeyboardInterrupt):
        with engine.begin() as conn:
            conn.exec_driver_sql("insert into t values (1)")
    assert ran == []  # raised inside the call, which never returned by itself
    engine.dispose()


class _InterruptedWhileFinalized:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        _spin(0.1)  # the interrupt is raised here, inside a finalizer, where Python drops it


def test_an_interrupt_python_drops_in_a_finalizer_is_raised_again(capfd):
    with Interrupts().installed(), pytest.raises(KeyboardInterrupt):
        _InterruptedWhileFinalized()
        _spin(5)
    assert "Exception ignored" not in capfd.readouterr().err


def test_sigterm_is_remembered_and_a_repeat_soon_after_is_ignored():
    interrupts = Interrupts()
    with interrupts.installed():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            _spin(5)
        os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl-C beside the command's own, say
        _spin(0.2)
    assert interrupts.terminated


def test_the_block_puts_back_what_it_found_and_leaves_an_ignored_sigint_ignored():
    hook, sigterm = sys.unraisablehook, signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a command started in the background
    try:
        with Interrupts().installed() as interrupts:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is interrupts
        assert signal.getsignal(signal.SIGTERM) is sigterm and sys.unraisablehook is hook
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_optuna_search_interrupted_at_any_moment_stops_with_the_interrupt(tmp_path):
    """Under Python's own handler about half of these end in Optuna's "Should not reach" or worse."""
    rng = random.Random(0)
    for run in range(12):
        study = optuna.create_study(storage=f"sqlite:///{tmp_path / f'{run}.db'}")

        def objective(trial: optuna.Trial) -> float:  # a step of work, then a write, as a trial's epochs
            for step in range(40):
                _spin(0.002)
                trial.set_user_attr(f"step{step % 5}", step)
            return 1.0

        timer = threading.Timer(rng.uniform(0.05, 0.6), os.kill, (os.getpid(), signal.SIGINT))
        with Interrupts().installed(), pytest.raises(KeyboardInterrupt):
            timer.start()
            study.optimize(objective, n_trials=40, catch=(Exception,))
        timer.join()
        states = [trial.state for trial in study.get_trials()]
        assert states[-1] in (TrialState.FAIL, TrialState.COMPLETE) and set(states[:-1]) <= {TrialState.COMPLETE}, states
