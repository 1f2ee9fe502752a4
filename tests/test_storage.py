import sqlite3

import optuna
import pytest

from storage import StorageError, check_url, open_optuna_storage, resolve_url


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
