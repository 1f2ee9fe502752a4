"""Faults, measured: SIGKILLs at random moments of a `tiny` search (with one worker and with two),
a PostgreSQL restart under a running search, and the bad-input table.

    python bench/faults.py            # 20 + 10 kills, PostgreSQL down for 30 s (9.3 min here)
    python bench/faults.py --quick    # 3 + 2 kills, PostgreSQL down for 5 s (a few minutes)

Kill loop: the same `nas search` command is started, SIGKILLed after a random 1-25 s (during
start-up, sampling, latency timing, training or storing), and started again; after each kill every
trial that was finished before must still be there, byte-equal (number, params, values, user
attributes). Then, once a killed trial is past its heartbeat's grace period, the command runs to
the end: it must reach the requested count with no trial left RUNNING and no killed trial retried
more than once.

With `--workers 2` only the command is killed, as `kill -9 PID` or the kernel's OOM killer does:
its workers must then stop by themselves (each running trial FAIL "interrupted" and queued again)
within `ORPHAN_WAIT_S`; a study still changing after that counts as workers that outlived their
command.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from _common import save, temporary_postgres  # noqa: E402

from nas.study import HEARTBEAT_S  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAS = [sys.executable, "-m", "nas"]
GRACE_S = 3 * HEARTBEAT_S  # storage.database: a trial is stale after three missed beats
FINISHED = ("COMPLETE", "PRUNED")
ORPHAN_WAIT_S = 60.0  # how long the workers of a killed command get to stop
SETTLE_S = 2.0  # a study unchanged this long, with no trial RUNNING, has no worker left


def _search_args(url: str, trials: int, study: str = "faults", workers: int = 1) -> list[str]:
    return [*NAS, "search", "--space", "tiny", "--target-latency", "5ms", "--trials", str(trials), "--epochs", "1",
            "--resolution", "64", "--study", study, "--storage", url, "--workers", str(workers), "--json"]


def _env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    env.pop("NAS_STORAGE", None)
    return env


def _trials(url: str, study: str = "faults") -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    except KeyError:  # killed before the study was created
        return []


def _finished(url: str, study: str = "faults") -> dict[int, str]:
    """Each finished trial as one canonical JSON string: what must never change."""
    return {t.number: json.dumps([t.state.name, t.params, t.values, t.user_attrs], sort_keys=True, default=str)
            for t in _trials(url, study) if t.state.name in FINISHED}


def _workers_stopped_s(url: str, study: str) -> float | None:
    """Seconds until the study stops changing with no trial RUNNING (the killed command's workers
    have stopped), or None when it still changes after ``ORPHAN_WAIT_S``."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < ORPHAN_WAIT_S:
        now = [(t.number, t.state.name) for t in _trials(url, study)]
        if now == last and all(state != "RUNNING" for _, state in now):
            return round(time.monotonic() - start - SETTLE_S, 1)
        last = now
        time.sleep(SETTLE_S)
    return None


def kill_loop(url: str, kills: int, trials: int, seed: int, workers: int = 1) -> dict:
    study = "faults" if workers == 1 else f"faults-{workers}-workers"
    rng = random.Random(seed)
    lost = changed = outlived = 0
    stopped_s: list[float] = []
    killed_at: dict[int, float] = {}  # trial number left RUNNING -> when its process was killed
    for _ in range(kills):
        before = _finished(url, study)
        proc = subprocess.Popen(_search_args(url, trials, study, workers), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(1.0, 25.0))
        if workers == 1:
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # the command alone: its workers must stop by themselves
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if workers > 1:
            seconds = _workers_stopped_s(url, study)
            if seconds is None:
                outlived += 1
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                stopped_s.append(seconds)
        now = time.time()
        for t in _trials(url, study):
            if t.state.name == "RUNNING":
                killed_at.setdefault(t.number, now)
        after = _finished(url, study)
        lost += sum(n not in after for n in before)
        changed += sum(n in after and after[n] != before[n] for n in before)
    if killed_at:  # a killed trial is reaped once it is past the grace period
        time.sleep(max(0.0, max(killed_at.values()) + GRACE_S + 1 - time.time()))
    before = _finished(url, study)
    final = subprocess.run(_search_args(url, trials, study, workers), env=_env(), capture_output=True, text=True)
    after = _finished(url, study)
    lost += sum(n not in after for n in before)
    changed += sum(n in after and after[n] != before[n] for n in before)
    all_trials = _trials(url, study)
    reap_s = [t.datetime_complete.timestamp() - killed_at[t.number] for t in all_trials
              if t.number in killed_at and t.datetime_complete is not None]
    retried = [t.system_attrs.get("failed_trial") for t in all_trials if "failed_trial" in t.system_attrs]
    return {
        "kills": kills, "trials_requested": trials, "final_exit": final.returncode,
        "finished": sum(t.state.name in FINISHED for t in all_trials),
        "completed_lost": lost, "completed_changed": changed,
        "running_left": sum(t.state.name == "RUNNING" for t in all_trials),
        "killed_running": len(killed_at),
        "trials_stopped_by_kills": sum(t.state.name == "FAIL" for t in all_trials),  # reaped or interrupted
        "duplicate_trials": len(retried) - len(set(retried)),  # a killed trial retried more than once
        "max_reap_s": round(max(reap_s), 1) if reap_s else None,
        **({"workers": workers, "workers_outlived_command": outlived,
            "max_workers_stop_s": max(stopped_s) if stopped_s else None} if workers > 1 else {}),
    }


def postgres_restart(down_s: float) -> dict:
    """A search on a throwaway cluster; the server is stopped once a trial has finished, kept down
    ``down_s`` seconds and started again."""
    with temporary_postgres() as server:
        url = server.url
        proc = subprocess.Popen(_search_args(url, 6), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            while not _finished(url) and proc.poll() is None:
                time.sleep(0.5)
            before = _finished(url)
            stopped = time.monotonic()
            subprocess.run([*server.pg_ctl, "-m", "fast", "stop"], check=True, capture_output=True)
            while proc.poll() is None and time.monotonic() - stopped < down_s:
                time.sleep(0.2)
            exited_s = time.monotonic() - stopped if proc.poll() is not None else None
            subprocess.run([*server.pg_ctl, "start"], check=True, capture_output=True)
            try:
                _, err = proc.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate()
            after = _finished(url)
            lines = err.strip().splitlines()
            return {"down_s": down_s, "exit": proc.returncode, "exited_while_down_after_s": exited_s,
                    "outcome": "reconnected" if proc.returncode == 0 else "exited",
                    "error_line": lines[-1] if lines and proc.returncode else None,
                    "traceback": "Traceback" in err, "completed_lost": sum(n not in after for n in before),
                    "completed_changed": sum(n in after and after[n] != before[n] for n in before)}
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def bad_inputs() -> dict:
    """The bad-input table of the tests, each case one real CLI run (in-process)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_bad_inputs.py", "-q", "-p", "no:randomly",
                           "-k", "test_bad_input_gets"], cwd=ROOT, env=_env(), capture_output=True, text=True)
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed)", proc.stdout)}
    return {"bad_inputs_tried": counts.get("passed", 0) + counts.get("failed", 0),
            "bad_inputs_one_line_exit2": counts.get("passed", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 kills and a 5 s PostgreSQL outage")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # budgets the kills do not finish first, so most kills land on a running trial
    kills, trials, down_s = (3, 4, 5.0) if args.quick else (20, 60, 30.0)
    worker_kills = 2 if args.quick else 10
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="nas-bench-faults-"))
    try:
        loop = kill_loop(f"sqlite:///{work / 'nas.db'}", kills, trials, args.seed)
        workers_loop = kill_loop(f"sqlite:///{work / 'nas.db'}", worker_kills, trials, args.seed, workers=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    restart = postgres_restart(down_s)
    table_figures = bad_inputs()
    figures = {**loop, "workers_kill_loop": workers_loop, **table_figures, "postgres_restart": restart, "quick": args.quick,
               "wall_s": round(time.perf_counter() - start, 1)}
    table = Table(title="faults")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, json.dumps(value, default=str) if isinstance(value, dict) else str(value))
    Console(width=160).print(table)
    print(f"wrote {save('faults', figures)}")


if __name__ == "__main__":
    main()
