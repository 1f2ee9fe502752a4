"""Shared fixtures: a real PostgreSQL server for the run, and a runner for the real `nas` CLI."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings

NAS = [sys.executable, "-m", "nas"]
# A test that searches for what the search stores, prints or survives runs one worker: the default (a
# worker a core) starts another interpreter per core and interleaves trials by timing, which costs
# CI's two cores minutes over the suite and makes a seeded order depend on load. The default itself
# is tested in tests/nas/test_workers.py and tests/nas/test_first_hour.py.
ONE_WORKER = ["--workers", "1"]

# The fuzz tests draw the same examples on every run, so the suite passes or fails the same way each
# time (a bug hypothesis finds once becomes a plain test case); HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# A suite started in the background (`pytest &` in a script) inherits SIGINT ignored, and so would
# every nas it starts, which then never sees the Ctrl-C a test sends (the Ctrl-C tests failed so).
# A handled signal is back at its default in each child after exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's {name} is not installed; `.ci/run` (or `./setup.sh --test`) installs it")
    return found[-1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL cluster on a free loopback port, removed after the run."""
    root = os.geteuid() == 0
    data = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    as_user: list[str] = []
    if root:  # initdb refuses to run as root
        pg = pwd.getpwnam("postgres")
        os.chown(data, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data / "db"), "-w", "-l", str(data / "log"), "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def cli_env() -> dict[str, str]:
    """The environment a test's `nas` command runs in: plain text, and no database from the shell's $NAS_STORAGE."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NAS_STORAGE", None)
    return env


@pytest.fixture()
def nas_cli(tmp_path):
    """Run the real `nas` command in a fresh working directory; returns CompletedProcess."""

    def run(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run([*NAS, *args], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"nas {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    run.cwd = tmp_path
    run.json = lambda *args: json.loads(run(*args, "--json").stdout)
    return run


@pytest.fixture()
def one_thread():
    """One torch thread for the test (``nas.threads``): two wait on each other on a shared 2-core machine."""
    from nas.threads import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture()
def spawn():
    """Start a process in a session of its own; whatever the test's outcome, it and its children
    are killed when the test ends, so no test leaves a process (or the port it holds) behind."""
    started: list[subprocess.Popen] = []

    def start(args: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def progressive_images(training_images: int, batch_size: int) -> int:
    """How many images a one-epoch proxy training scores: its second half of batches (a last batch
    of one image is skipped), counted here independently of ``nas.proxy``."""
    sizes = [min(batch_size, training_images - start) for start in range(0, training_images, batch_size)]
    sizes = [size for size in sizes if size >= 2]
    return sum(sizes[len(sizes) // 2:])


def completed_trials(database: Path) -> int:
    """COMPLETE trials of the only study in the SQLite file ``database``; 0 before there is one."""
    from optuna.trial import TrialState

    from nas.errors import StudyError
    from nas.results import load_study
    from storage import Store

    try:
        return sum(t.state == TrialState.COMPLETE for t in load_study(Store.open(f"sqlite:///{database}"), None).trials)
    except StudyError:
        return 0
