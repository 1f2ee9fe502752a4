import multiprocessing
import sqlite3
import threading
import uuid

import optuna
import pytest

from storage import StorageError, Store, add_run, check_url, latency, list_runs, open_optuna_storage, resolve_url


def test_sqlite_file_is_created_and_holds_optuna_tables(tmp_path):
    path = tmp_path / "s.db"
    storage = open_optuna_storage(f"sqlite:///{path}")
    optuna.create_study(study_name="x", storage=storage)
    tables = {r[0] for r in sqlite3.connect(path).execute("select name from sqlite_master where type='table'")}
    assert {"studies", "trials", "trial_user_attributes"} <= tables


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("precious notes")
    with pytest.raises(StorageError, match="not an SQLite database"):
        open_optuna_storage(f"sqlite:///{path}")
    assert path.read_text() == "precious notes"


@pytest.mark.parametrize("url, why", [
    ("not a url", "not a database URL"),
    ("sqlite:////no/such/folder/x.db", "does not exist"),
    ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "cannot open database"),
])
def test_bad_urls_get_one_line(url, why):
    with pytest.raises(StorageError, match=why) as info:
        check_url(url)
    assert "\n" not in str(info.value) and "secret" not in str(info.value)


def test_resolve_url_prefers_flag_then_env(monkeypatch):
    monkeypatch.setenv("NAS_STORAGE", "sqlite:///env.db")
    assert resolve_url("sqlite:///flag.db") == "sqlite:///flag.db"
    assert resolve_url(None) == "sqlite:///env.db"
    monkeypatch.delenv("NAS_STORAGE")
    assert resolve_url(None) == "sqlite:///nas.db"


def test_postgresql_is_a_real_optuna_storage(postgres_url):
    storage = open_optuna_storage(postgres_url, heartbeat_interval=5)
    study = optuna.create_study(study_name="pg-check", storage=storage, load_if_exists=True)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = optuna.load_study(study_name="pg-check", storage=open_optuna_storage(postgres_url))
    assert len(again.trials) >= 3


ROUNDS = 12


def _ask_each_round(url: str, barrier, asked) -> None:
    """One of two processes: in every round, both ask the round's study for a trial at the same moment."""
    storage = Store.open(url).optuna()
    for round_ in range(ROUNDS):
        study = optuna.load_study(study_name=f"r{round_}", storage=storage)
        barrier.wait()
        asked.put((round_, study.ask().number))


def test_two_processes_asking_at_once_never_share_a_queued_trial_on_sqlite(tmp_path):
    """Python's sqlite3 starts a transaction only at the first write: both processes used to read
    the one queued trial as WAITING and both ran it (6 rounds in 10). ``lock_on_begin`` makes the
    second wait and read it RUNNING."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    storage = Store.open(url).optuna()
    for round_ in range(ROUNDS):
        optuna.create_study(study_name=f"r{round_}", storage=storage).enqueue_trial({"x": 1.0})
    context = multiprocessing.get_context("spawn")
    barrier, asked = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_ask_each_round, args=(url, barrier, asked)) for _ in range(2)]
    for worker in workers:
        worker.start()
    answers = [asked.get(timeout=120) for _ in range(2 * ROUNDS)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    for round_ in range(ROUNDS):
        numbers = sorted(number for r, number in answers if r == round_)
        assert numbers == [0, 1]  # the queued trial (number 0) went to one of them, a new one to the other


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    return Store.open(request.getfixturevalue("postgres_url"))


def test_a_store_resolves_once_and_touches_nothing_until_used(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_STORAGE", f"sqlite:///{tmp_path / 'env.db'}")
    store = Store.open(None)
    assert store.url == f"sqlite:///{tmp_path / 'env.db'}" and not (tmp_path / "env.db").exists()
    assert store.optuna() is store.optuna()  # one Optuna storage (one engine) per database and process
    assert "secret" not in str(Store.open("postgresql+psycopg://u:secret@127.0.0.1:1/db"))


def test_concurrent_creation_of_one_table_row_makes_one_row(any_url):
    fingerprint = {"cpu": "race", "run": str(uuid.uuid4())}
    barrier, ids = threading.Barrier(6), []

    def create() -> None:
        barrier.wait()
        ids.append(latency.get_or_create_table(any_url, fingerprint))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert sum(t["fingerprint"] == fingerprint for t in latency.list_tables(any_url)) == 1


def test_latency_tables_on_every_backend(any_url):  # a Store on SQLite or PostgreSQL
    here, there = {"cpu": "A", "threads": 1, "run": str(uuid.uuid4())}, {"cpu": "B", "threads": 1, "run": str(uuid.uuid4())}
    table = latency.get_or_create_table(any_url, here)
    assert latency.get_or_create_table(any_url, here) == table != latency.get_or_create_table(any_url, there)
    latency.record_pass(any_url, table, "k1", 1, latency_ms=1.5, spread_ms=0.1, load_avg=0.2, params=10)
    latency.record_pass(any_url, table, "k1", 2, latency_ms=1.9, spread_ms=0.1, load_avg=0.2, params=10)  # slower: kept 1.5
    latency.record_pass(any_url, table, "k2", 1, latency_ms=2.0, spread_ms=0.1, load_avg=0.2, params=5)
    latency.record_pass(any_url, table, "k2", 2, latency_ms=1.2, spread_ms=0.1, load_avg=0.2, params=5)  # faster: taken
    assert latency.load_entries(any_url, table) == {"k1": (1.5, 10), "k2": (1.2, 5)}
    assert latency.entry_passes(any_url, table) == {"k1": 2, "k2": 2}
    assert latency.load_entries(any_url, latency.find_table(any_url, there)) == {}
    latency.save_model(any_url, table, "tiny", build_s=2.0)
    latency.save_model(any_url, table, "tiny", calibration={"samples": 3})
    (model,) = latency.list_models(any_url, table)
    assert model["build_s"] == 2.0 and model["calibration"] == {"samples": 3}  # an update keeps other columns
    study = f"s-{uuid.uuid4()}"
    for measured in (3.0, 3.3):  # a re-check replaces the row
        latency.add_trial_latency(any_url, study, 4, latency_ms=measured, spread_ms=0.1, load_avg=0.5,
                                  predicted_ms=3.1, device=here)
    assert latency.trial_latencies(any_url, study)[4].latency_ms == 3.3


def test_runs_on_every_backend(any_url):
    name = f"net-{uuid.uuid4()}"
    run_id = add_run(any_url, kind="baseline", name=name, study=None, trial=None, architecture={"arch_def": [["ds_r1_k3_s1_c8"]]},
                     accuracy=0.5, settings={"epochs": 1})
    rows = [r for r in list_runs(any_url, kind="baseline") if r.name == name]
    assert [r.id for r in rows] == [run_id] and rows[0].architecture["arch_def"] == [["ds_r1_k3_s1_c8"]]
    with pytest.raises(ValueError, match="kind must be one of"):
        add_run(any_url, kind="nope", name=name, architecture={})
