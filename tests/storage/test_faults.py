"""Database faults: one line each, a distinct exit code per fault (``nas.errors.EXIT_DATABASE``),
nothing stored lost, and commands that only read never create a database."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from nas import ProxySettings, SearchConfig, run_search
from nas.errors import EXIT_DATABASE, EXIT_USAGE
from storage import Store

from conftest import _pg_bin, free_port
from fakes import BlockLatency, WidthAccuracy
from inprocess import run_nas

SEARCH = ["search", "--space", "tiny", "--target-latency", "5ms", "--trials", "3", "--epochs", "1"]


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> Path:
    """A real SQLite file with a two-trial study ``s``."""
    path = tmp_path_factory.mktemp("faults") / "study.db"
    config = SearchConfig(target_latency_ms=5.0, space="tiny", trials=2, study="s", proxy=ProxySettings(epochs=1))
    run_search(config, Store.open(f"sqlite:///{path}"), accuracy=WidthAccuracy(), latency=BlockLatency())
    return path


def _one_line(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    code, stderr = run_nas(args, monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return code, lines[0]


def test_exit_codes_are_distinct_per_fault():
    assert len(set(EXIT_DATABASE.values())) == len(EXIT_DATABASE) and EXIT_DATABASE["usage"] == EXIT_USAGE


@pytest.mark.parametrize("spoil, command", [
    ("truncate", ["trials"]), ("truncate", ["best"]), ("garble", ["trials"]), ("garble", SEARCH), ("text", ["trials"]),
])
def test_a_truncated_or_corrupted_sqlite_file_is_exit_5(study_db, tmp_path, monkeypatch, capsys, spoil, command):
    path = tmp_path / "nas.db"
    data = study_db.read_bytes()
    if spoil == "truncate":
        data = data[: len(data) // 3]
    elif spoil == "garble":  # keep the header, overwrite every page after the first
        data = data[:4096] + bytes((i * 7919) % 251 for i in range(len(data) - 4096))
    else:
        data = b"precious notes, not a database\n" * 200
    path.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    code, line = _one_line(command, monkeypatch, capsys)
    assert code == EXIT_DATABASE["corrupt"], line
    assert path.read_bytes() == data


@pytest.mark.parametrize("command", [["trials"], ["best"], ["show", "0"], ["report"], ["dashboard", "--port", "1"]])
def test_reading_commands_never_create_a_database(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    code, line = _one_line(command, monkeypatch, capsys)
    assert code == EXIT_USAGE and "no database at nas.db" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url, fault", [
    ("postgresql+psycopg://postgres:secret@127.0.0.1:1/postgres", "unreachable"),  # a port typo
    ("postgresql+psycopg://postgres:secret@no-such-host.invalid/postgres", "unreachable"),  # a host typo
    ("sqlite:////no/such/folder/nas.db", "usage"),
    ("postgresq://postgres:secret@127.0.0.1/postgres", "usage"),  # a scheme typo
])
def test_url_typos_get_one_line_without_the_password(tmp_path, monkeypatch, capsys, url, fault):
    monkeypatch.chdir(tmp_path)
    code, line = _one_line([*SEARCH, "--storage", url], monkeypatch, capsys)
    assert code == EXIT_DATABASE[fault] and "secret" not in line, line


def test_a_database_name_typo_on_a_real_server_is_exit_3(postgres_url, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, line = _one_line(["trials", "--storage", postgres_url.rsplit("/", 1)[0] + "/postgress"], monkeypatch, capsys)
    assert code == EXIT_DATABASE["unreachable"] and "postgress" in line


@contextlib.contextmanager
def _mounted_tmpfs(size: str) -> Path:
    """A small tmpfs of its own (root only): a read-only folder or a full disk without touching real ones."""
    folder = Path(tempfile.mkdtemp(prefix="nas-fault-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        folder.rmdir()


def test_a_read_only_database_folder_is_exit_6_and_still_reads(study_db, monkeypatch, capsys):
    with _mounted_tmpfs("8m") as folder:
        shutil.copy(study_db, folder / "nas.db")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        before = (folder / "nas.db").read_bytes()
        monkeypatch.chdir(folder)
        code, line = _one_line(SEARCH, monkeypatch, capsys)
        assert code == EXIT_DATABASE["read_only"], line
        assert run_nas(["trials", "--json"], monkeypatch, capsys)[0] == 0  # reading needs no write
        assert (folder / "nas.db").read_bytes() == before


def test_a_full_disk_is_exit_7_and_keeps_what_was_stored(study_db, monkeypatch, capsys):
    with _mounted_tmpfs("2m") as folder:
        shutil.copy(study_db, folder / "nas.db")
        with (folder / "filler").open("wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        monkeypatch.chdir(folder)
        code, line = _one_line([*SEARCH, "--study", "new"], monkeypatch, capsys)
        assert code == EXIT_DATABASE["full"], line
        (folder / "filler").unlink()
        assert run_nas(["trials", "--study", "s", "--json"], monkeypatch, capsys)[0] == 0


@pytest.fixture(scope="module")
def password_server():
    """A PostgreSQL cluster that checks passwords (the session's own trusts everyone)."""
    root = os.geteuid() == 0
    data = Path(tempfile.mkdtemp(prefix="nas-pg-auth-"))
    as_user: list[str] = []
    if root:
        import pwd

        pg = pwd.getpwnam("postgres")
        os.chown(data, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    (data / "pw").write_text("right-password\n")
    os.chmod(data / "pw", 0o644)
    port = free_port()
    subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data / "db"), "-A", "scram-sha-256", "-U", "postgres",
                    "--pwfile", str(data / "pw")], check=True, capture_output=True)
    subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data / "db"), "-w", "-l", str(data / "log"), "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_a_wrong_password_is_exit_4_and_never_printed(password_server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = f"postgresql+psycopg://postgres:wrong-S3cret@127.0.0.1:{password_server}/postgres"
    for command in (SEARCH, ["trials"], ["dashboard", "--port", str(free_port())]):
        code, line = _one_line([*command, "--storage", url], monkeypatch, capsys)
        assert code == EXIT_DATABASE["auth"] and "wrong-S3cret" not in line and "password" in line, line


def test_reading_commands_leave_an_optuna_only_database_byte_for_byte(study_db, tmp_path, monkeypatch, capsys):
    """`nas trials`, `best` and `report` on a database without our tables: they read those as empty
    and write nothing (no ``nas_*`` table made)."""
    import sqlite3

    path = tmp_path / "optuna-only.db"
    shutil.copy(study_db, path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for (name,) in conn.execute("select name from sqlite_master where type = 'table' and name like 'nas_%'").fetchall():
            conn.execute(f"drop table {name}")
        conn.commit()
        conn.execute("vacuum")
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    for args in (["trials"], ["best"], ["report", "-o", "report.html"]):
        code, stderr = run_nas([*args, "--storage", f"sqlite:///{path}"], monkeypatch, capsys)
        assert code == 0, stderr
        assert path.read_bytes() == before, args
    assert (tmp_path / "report.html").is_file()


def test_reading_commands_make_no_table_in_an_optuna_only_postgresql_database(postgres_url, monkeypatch, capsys):
    import uuid

    import sqlalchemy
    from sqlalchemy.engine import make_url

    name = f"optuna_only_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    config = SearchConfig(target_latency_ms=5.0, space="tiny", trials=2, study="s", proxy=ProxySettings(epochs=1))
    run_search(config, Store.open(url), accuracy=WidthAccuracy(), latency=BlockLatency())
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
    with engine.begin() as conn:
        for table in sqlalchemy.inspect(conn).get_table_names():
            if table.startswith("nas_"):
                conn.exec_driver_sql(f"DROP TABLE {table} CASCADE")
        before = sorted(sqlalchemy.inspect(conn).get_table_names())
    try:
        for args in (["trials"], ["best"]):
            code, stderr = run_nas([*args, "--storage", url], monkeypatch, capsys)
            assert code == 0, stderr
        with engine.connect() as conn:
            assert sorted(sqlalchemy.inspect(conn).get_table_names()) == before
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()
