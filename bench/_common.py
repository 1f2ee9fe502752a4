"""What every benchmark records beside its figures: when, on what, by which command."""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import platform
import pwd
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from nas.latency import cpu_model

RESULTS = Path(__file__).parent / "results"


def provenance() -> dict:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "platform": platform.platform()},
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(args: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``args``, output discarded. The CPU time (user +
    system) is what a busy shared machine inflates far less than wall time."""
    cpu, start = _children_cpu_s(), time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "NO_COLOR": "1"})
    return time.perf_counter() - start, _children_cpu_s() - cpu


def save(name: str, figures: dict, directory: Path = RESULTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({**provenance(), **figures}, indent=2, default=str) + "\n")
    return path


def steady_state(ends: Iterable[datetime.datetime | None], workers: int) -> tuple[float, float]:
    """(seconds, trials an hour) of a search's steady state: from the moment each of ``workers``
    has finished a first trial (its start-up is behind it) to the last trial's end. ``ends``: the
    trials' completion times (None: never finished)."""
    done = sorted(end for end in ends if end is not None)
    seconds = (done[-1] - done[workers - 1]).total_seconds()
    return seconds, 3600 * (len(done) - workers) / seconds


@dataclass(frozen=True)
class Postgres:
    url: str
    pg_ctl: tuple[str, ...]  # pg_ctl with the cluster's folder, log and options: add "start" or "-m", "fast", "stop"


@contextlib.contextmanager
def temporary_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on a free loopback port (as tests/conftest.py starts one)."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not binaries:
        sys.exit("PostgreSQL is not installed; `./setup.sh --test` installs it")
    bin_dir = Path(binaries[-1])
    data = Path(tempfile.mkdtemp(prefix="nas-bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        postgres = pwd.getpwnam("postgres")
        os.chown(data, postgres.pw_uid, postgres.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    pg_ctl = (*as_user, str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-w", "-l", str(data / "log"), "-o",
              f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off")
    subprocess.run([*pg_ctl, "start"], check=True, capture_output=True)
    try:
        yield Postgres(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", pg_ctl)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
