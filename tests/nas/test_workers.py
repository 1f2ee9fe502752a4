"""Worker processes on one study: real PostgreSQL, real spawned processes, cheap estimators."""

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from conftest import NAS, completed_trials, free_port, wait_for
from fakes import FAKE_DEVICE, BlockLatency, WidthAccuracy
from nas import SearchConfig
from nas.results import load_study, record_genotype
from nas.study import counts_against_budget
from nas import workers
from nas.errors import EXIT_TERMINATED, UsageError
from nas.workers import ScaleOut, WorkerJob, parse_workers, run_workers, shares, work
from storage import Store, TrialRecord
from storage.contract import INTERRUPTED


def _config(trials: int, study: str) -> SearchConfig:
    return SearchConfig(space="tiny", target_latency_ms=2.0, trials=trials, pruner="none", study=study)


def test_the_budget_is_split_so_the_workers_together_run_exactly_it():
    assert shares(10, 4) == [3, 3, 2, 2] and sum(shares(3, 8)) == 3 and shares(None, 2) == [None, None]


def test_workers_auto_is_one_a_core_except_where_the_search_runs_in_one_process():
    cores = len(os.sched_getaffinity(0))
    assert parse_workers("auto") is None and parse_workers("3") == 3
    for bad in ("two", "-1", "1.5", ""):
        with pytest.raises(UsageError, match="whole number or auto"):
            parse_workers(bad)
    with pytest.raises(UsageError, match=">= 1"):
        ScaleOut(parse_workers("0"))
    assert ScaleOut().trials_at_once(_config(4, "auto")) == cores
    assert ScaleOut(3).trials_at_once(_config(4, "auto")) == 3
    hybrid = SearchConfig(space="tiny", target_latency_ms=2.0, trials=4, estimator="hybrid:synflow:2")
    assert ScaleOut().trials_at_once(hybrid) == 1  # and not refused, as --workers 2 is
    with pytest.raises(UsageError, match="one process"):
        ScaleOut(2).check(hybrid, Store.open("sqlite://"))
    assert ScaleOut(runner="ray").trials_at_once(_config(4, "auto")) is None  # Tune's own limit: a trial a CPU


@pytest.mark.slow
def test_a_search_without_workers_runs_one_worker_a_core_it_may_use(tmp_path):
    """The default ``--workers auto`` follows the cores the command may run on (``taskset``, a
    container's CPU set): one core, one process; two, two worker processes on the study."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two usable cores: one process on one core is told from two workers on two")
    env = {**os.environ, "NO_COLOR": "1"}
    for allowed in (cores[:1], cores[:2]):
        proc = subprocess.run([*NAS, "search", "--space", "tiny", "--target-latency", "2ms", "--trials", "4",
                               "--estimator", "params", "--pruner", "none", "--resolution", "32",
                               "--storage", f"sqlite:///{tmp_path}/cores-{len(allowed)}.db"],
                              env=env, capture_output=True, text=True, timeout=600,
                              preexec_fn=lambda allowed=allowed: os.sched_setaffinity(0, allowed))
        assert proc.returncode == 0, proc.stderr
        assert ("2 worker processes on study" in proc.stderr) == (len(allowed) == 2), proc.stderr
        # no table in this database: the closing line says how to build one for this device and database
        assert f"latency build --space tiny --resolution 32 --storage sqlite:///{tmp_path}/cores-" in proc.stdout
        study = load_study(Store.open(f"sqlite:///{tmp_path}/cores-{len(allowed)}.db"), "tiny-2ms-soft")
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4


def test_a_worker_that_loses_the_database_for_longer_exits_non_zero_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(workers, "DATABASE_WAIT_S", 1.0)
    gone = Store.open(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone")  # nothing listens there
    with pytest.raises(SystemExit) as exited:
        work(WorkerJob(_config(2, "gone"), gone, WidthAccuracy(), BlockLatency(), share=2, index=3))
    assert exited.value.code == 3  # the database's exit code, not a crash
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1 and "worker 3" in stderr and "lost the database" in stderr


def _assert_exactly(store: Store, study_name: str, trials: int) -> None:
    study = load_study(store, study_name)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) == trials
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * trials  # none RUNNING, none failed
    for trial in study.trials:
        record = TrialRecord.from_trial(trial)
        assert record.accuracy == pytest.approx(WidthAccuracy.final(record_genotype(record)))
        assert record.device["cpu"] == FAKE_DEVICE["cpu"] and record.estimator == "fake" and record.macs > 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_four_workers_on_one_study_run_exactly_the_budget(backend, request, tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store, name = Store.open(url), f"workers-{uuid.uuid4().hex[:8]}"
    result = run_workers(_config(10, name), store, 4, accuracy=WidthAccuracy(), latency=BlockLatency())
    assert result.ran == 10 and result.counts == {"COMPLETE": 10}
    _assert_exactly(store, name, 10)


@pytest.fixture()
def fresh_database(postgres_url):
    """An empty database on the test server: no Optuna schema, no tables of ours."""
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


@pytest.mark.slow
def test_eight_workers_started_together_on_a_fresh_database_all_start(fresh_database):
    store = Store.open(fresh_database)
    result = run_workers(_config(8, "fresh"), store, 8, accuracy=WidthAccuracy(), latency=BlockLatency())
    assert result.counts == {"COMPLETE": 8}  # each worker's share is one trial: all eight ran theirs
    _assert_exactly(store, "fresh", 8)


@pytest.mark.slow
def test_the_cli_runs_worker_processes_that_measure_latency(postgres_url, nas_cli):
    name = f"cli-workers-{os.getpid()}"
    out = nas_cli.json("search", "--space", "tiny", "--target-latency", "2ms", "--trials", "4", "--workers", "2",
                       "--estimator", "params", "--pruner", "none", "--resolution", "64", "--storage", postgres_url,
                       "--study", name)
    assert out["ran"] == 4 and out["counts"] == {"COMPLETE": 4}
    records = [TrialRecord.from_trial(t) for t in load_study(Store.open(postgres_url), name).trials]
    assert all(r.latency_source == "measured" and r.latency_ms > 0 for r in records)


def _alive_in_group(group: int) -> list[int]:
    """Processes of process group ``group`` that have not exited (zombies count as exited)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name (field 2) may hold spaces: the fields after its ")" are fixed
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # it exited while we looked
        if int(pgrp) == group and state != "Z":
            alive.append(int(stat.parent.name))
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_workers_stop_as_interrupted_when_their_command_is_killed_or_terminated(how, tmp_path, spawn):
    """``kill -9`` or ``kill`` of ``nas search --workers 2`` (the command alone, as the OOM killer or
    a job runner stops it): its workers stop as Ctrl-C stops them, each running trial FAIL
    "interrupted" and queued again. Before, they ran the rest of the budget, unseen after a SIGKILL,
    and after a SIGTERM with the command waiting for them."""
    env = {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    env.pop("NAS_STORAGE", None)
    command = spawn([*NAS, "search", "--space", "tiny", "--target-latency", "5ms", "--trials", "500", "--workers", "2"],
                    cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    wait_for(lambda: completed_trials(tmp_path / "nas.db") >= 2, timeout=300)
    assert len(_alive_in_group(command.pid)) >= 3  # the command, its two workers (and their measuring children)
    os.kill(command.pid, getattr(signal, how))
    _, err = command.communicate(timeout=120)  # without the fix, after a SIGTERM: ~500 trials later
    if how == "SIGTERM":
        assert command.returncode == EXIT_TERMINATED and "\ninterrupted: " in err and "Traceback" not in err, err
    wait_for(lambda: not _alive_in_group(command.pid), timeout=120)  # without the fix, after a SIGKILL: likewise
    assert completed_trials(tmp_path / "nas.db") < 500
    # an interrupt inside the trial pipeline marks the trial interrupted and queues it again; one that
    # lands in Optuna's own steps around it leaves a FAIL without a reason (neither counts against
    # --trials), or, inside Optuna's tell, a trial RUNNING that a later run's heartbeat check reaps
    trials = load_study(store, None).trials
    states = [t.state for t in trials]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert not any(counts_against_budget(t) for t in failed)
    queued_again = [t for t in failed if TrialRecord.from_trial(t).fail_reason == INTERRUPTED]
    assert states.count(TrialState.WAITING) == len(queued_again)
