"""Interrupts, measured: Ctrl-C and SIGTERM at random moments, in Optuna studies in this process
(Python's own handler beside ``nas.interrupts``) and in one-worker `nas search` commands.

    python bench/interrupts.py            # 40 + 40 studies, 12 commands (about 3 min here)
    python bench/interrupts.py --quick    # 10 + 10 studies, 4 commands
    python bench/interrupts.py --json     # the figures as JSON

Studies: an Optuna study on an SQLite file whose objective alternates 2 ms of work with a write,
as a trial's epochs do, interrupted once after a random 0.05-0.6 s. Each ends with the interrupt
(and a study whose trials are all COMPLETE but the last), in Optuna's ``AssertionError: Should not
reach`` or another error, or runs on to its 40 trials (the interrupt was lost).

Commands: `nas search --space tiny --estimator params --latency measure --workers 1`, many fast
trials on a new SQLite file, sent SIGINT (to its process group, as a terminal does) or SIGTERM
(to it, as `kill` does) after its second trial and a random 0-2 s more; it must exit 130 or 143
with the resume line and no traceback, within ``STOP_WAIT_S``, with no trial left RUNNING.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from _common import save  # noqa: E402

from nas.interrupts import Interrupts  # noqa: E402

NAS = [sys.executable, "-m", "nas"]
STOP_WAIT_S = 60.0  # a command still running this long after the signal counts as one that ran on
TRIALS = 40


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _objective(trial: optuna.Trial) -> float:
    for step in range(40):
        _spin(0.002)
        trial.set_user_attr(f"step{step % 5}", step)
    return 1.0


def _interrupt(sent: list[float]) -> None:
    sent.append(time.perf_counter())
    os.kill(os.getpid(), signal.SIGINT)


def study_runs(runs: int, handler: bool, seed: int) -> dict:
    """``runs`` studies, each interrupted once; outcomes and the delay from signal to interrupt."""
    rng, outcomes, delays = random.Random(seed), Counter(), []
    with tempfile.TemporaryDirectory(prefix="nas-bench-interrupts-") as work:
        for run in range(runs):
            study = optuna.create_study(storage=f"sqlite:///{Path(work) / f'{run}.db'}")
            sent: list[float] = []
            timer = threading.Timer(rng.uniform(0.05, 0.6), _interrupt, (sent,))
            try:
                with Interrupts().installed() if handler else nullcontext():
                    timer.start()
                    study.optimize(_objective, n_trials=TRIALS, catch=(Exception,))
                outcome = "ran on"
            except KeyboardInterrupt:
                delays.append(1000 * (time.perf_counter() - sent[0]))
                states = [t.state.name for t in study.get_trials()]
                outcome = "interrupt" if set(states[:-1]) <= {"COMPLETE"} and states[-1] != "RUNNING" else "interrupt, RUNNING left"
            except AssertionError as err:
                outcome = f"AssertionError: {err}"
            except Exception as err:  # noqa: BLE001 -- counted by type: what the interrupt turned into
                outcome = type(err).__name__
            timer.join()
            outcomes[outcome] += 1
    return {"runs": runs, "outcomes": dict(outcomes),
            "delay_ms_median": round(statistics.median(delays), 1) if delays else None,
            "delay_ms_max": round(max(delays), 1) if delays else None}


def _trials(db: Path) -> list[tuple[int, str]]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select number, state from trials order by number").fetchall()
    except sqlite3.OperationalError:  # Optuna's tables not made yet
        return []


def command_runs(runs: int, seed: int) -> dict:
    rng, outcomes, stop_s = random.Random(seed), Counter(), []
    env = {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    env.pop("NAS_STORAGE", None)
    for run in range(runs):
        signum = (signal.SIGINT, signal.SIGTERM)[run % 2]
        with tempfile.TemporaryDirectory(prefix="nas-bench-interrupts-") as work:
            db = Path(work) / "nas.db"
            proc = subprocess.Popen([*NAS, "search", "--space", "tiny", "--target-latency", "2ms", "--estimator", "params",
                                     "--resolution", "32", "--latency", "measure", "--workers", "1", "--trials", "100000"],
                                    cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
            while len(_trials(db)) < 2 and proc.poll() is None:
                time.sleep(0.1)
            time.sleep(rng.uniform(0.0, 2.0))
            sent = time.perf_counter()
            os.killpg(proc.pid, signum) if signum == signal.SIGINT else proc.send_signal(signum)
            try:
                _, err = proc.communicate(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate()
                outcomes["ran on"] += 1
                continue
            stop_s.append(time.perf_counter() - sent)
            expected = 130 if signum == signal.SIGINT else 143
            clean = proc.returncode == expected and "run the same command" in err and "Traceback" not in err
            running = sum(state == "RUNNING" for _, state in _trials(db))
            outcomes["stopped cleanly" if clean and not running else f"exit {proc.returncode}, {running} RUNNING"] += 1
    return {"runs": runs, "outcomes": dict(outcomes), "stop_s_median": round(statistics.median(stop_s), 2) if stop_s else None,
            "stop_s_max": round(max(stop_s), 2) if stop_s else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 + 10 studies and 4 commands")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    studies, commands = (10, 4) if args.quick else (40, 12)
    optuna.logging.set_verbosity(optuna.logging.CRITICAL)  # Optuna logs each failed trial's traceback
    start = time.perf_counter()
    figures = {"python_handler": study_runs(studies, handler=False, seed=args.seed),
               "nas_interrupts": study_runs(studies, handler=True, seed=args.seed),
               "one_worker_commands": command_runs(commands, args.seed),
               "quick": args.quick, "wall_s": round(time.perf_counter() - start, 1)}
    path = save("interrupts", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title="interrupts")
    for column in ("runs", "handler", "outcomes", "delay / stop"):
        table.add_column(column)
    for key, unit in (("python_handler", "ms"), ("nas_interrupts", "ms"), ("one_worker_commands", "s")):
        row = figures[key]
        low, high = (row["delay_ms_median"], row["delay_ms_max"]) if unit == "ms" else (row["stop_s_median"], row["stop_s_max"])
        table.add_row(str(row["runs"]), key, ", ".join(f"{n} {what}" for what, n in row["outcomes"].items()),
                      f"median {low} {unit}, max {high} {unit}")
    Console(width=160).print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
