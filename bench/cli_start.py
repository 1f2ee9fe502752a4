"""How long the commands people type dozens of times an hour take to answer, against `optuna --help`:
`nas --help`, `nas spaces`, `nas trials` on a 20-trial study, and `nas dashboard` until its port
accepts a connection; `optuna trials` on the same study shows what reading an Optuna database
costs Optuna itself. One process at a time, the commands taking turns in each round, so every
command sees the same machine; the figures are the medians of the rounds: wall time, and the CPU
time the process used (user + system), which a busy shared machine inflates far less.

    python bench/cli_start.py [--repeats 5] [--json]

Targets (issue 19): the three read commands within 1.5x of `optuna --help`; the dashboard listening
in under 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import optuna
import torch
from rich.console import Console
from rich.table import Table

from _common import run_once, save
from nas.metrics import count_params
from nas.reward import Reward
from search_spaces import build_model, get_space
from storage import Store, StudyRecord, write_trial

BIN = Path(sys.executable).parent  # the venv's console scripts, as a user of `./setup.sh` calls them
READ_TARGET = 1.5  # x `optuna --help`
DASHBOARD_TARGET_S = 3.0
TRIALS = 20


def write_study(folder: Path) -> None:
    """A 20-trial study in ``folder/nas.db``, written directly: sampled mbconv networks with their
    real parameter counts and made-up accuracy and latency (no training, no timing)."""
    store = Store.open(f"sqlite:///{folder / 'nas.db'}")
    study = optuna.create_study(study_name="cli-start", storage=store.optuna(), direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    StudyRecord(space="mbconv", target_latency_ms=20.0, reward="soft", dataset="digits").write(study)
    space, reward = get_space("mbconv"), Reward("soft", 20.0)
    for number in range(TRIALS):
        trial = study.ask()
        genotype = space.sample(trial)
        with torch.device("meta"):  # size only: nothing is allocated
            params = count_params(build_model(genotype))
        accuracy, latency_ms = 0.6 + 0.015 * number, 12.0 + 0.7 * number
        write_trial(trial, arch_def=genotype.arch_def, network=genotype.network(), arch_key=genotype.key,
                    params=params, latency_ms=latency_ms, latency_spread_ms=0.1,
                    latency_source="measured", accuracy=accuracy, estimator="train")
        study.tell(trial, reward(accuracy, latency_ms))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard_listening(cwd: Path) -> tuple[float, None]:
    """Seconds from starting `nas dashboard` until its port accepts a connection; then it is stopped
    (its CPU time is not taken: it runs on until stopped)."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "nas"), "dashboard", "--port", str(port)], cwd=cwd, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nas dashboard exited {proc.returncode} before listening")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return time.perf_counter() - start, None
            except OSError:
                time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    nas = str(BIN / "nas")
    commands = {
        "optuna --help": lambda cwd: run_once([str(BIN / "optuna"), "--help"], cwd),
        "nas --help": lambda cwd: run_once([nas, "--help"], cwd),
        "nas spaces": lambda cwd: run_once([nas, "spaces"], cwd),
        f"nas trials ({TRIALS} trials)": lambda cwd: run_once([nas, "trials"], cwd),
        f"optuna trials ({TRIALS} trials)": lambda cwd: run_once([str(BIN / "optuna"), "trials", "--study-name", "cli-start",
                                                          "--storage", "sqlite:///nas.db"], cwd),
        "nas dashboard (listening)": dashboard_listening,
    }
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_study(folder)
        for measure in commands.values():  # one untimed round: files into the page cache for every command alike
            measure(folder)
        runs: dict[str, list[tuple[float, float | None]]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, measure in commands.items():
                runs[name].append(measure(folder))
    rows = []
    for name, measured in runs.items():
        wall = [w for w, _ in measured]
        cpu = [c for _, c in measured if c is not None]
        rows.append({"command": name, "median_s": statistics.median(wall), "runs_s": wall,
                     "median_cpu_s": statistics.median(cpu) if cpu else None, "runs_cpu_s": cpu})
    baseline, baseline_cpu = rows[0]["median_s"], rows[0]["median_cpu_s"]
    for r in rows:
        r.update(x_optuna_help=r["median_s"] / baseline, target=_target(r["command"]),
                 met=_met(r["command"], r["median_s"], baseline),
                 cpu_x_optuna_help=None if r["median_cpu_s"] is None else r["median_cpu_s"] / baseline_cpu)
    figures = {"repeats": args.repeats, "load_avg_1min_before": load_before, "load_avg_1min_after": os.getloadavg()[0],
               "commands": rows}
    path = save("cli_start", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"CLI start, median of {args.repeats} (load {load_before:.1f} before)")
    for column in ("command", "wall s", "min s", "max s", "x optuna --help", "CPU s", "CPU x", "target", "met"):
        table.add_column(column, justify="left" if column in ("command", "target") else "right")
    for r in rows:
        table.add_row(r["command"], f"{r['median_s']:.2f}", f"{min(r['runs_s']):.2f}", f"{max(r['runs_s']):.2f}",
                      f"{r['x_optuna_help']:.2f}", "-" if r["median_cpu_s"] is None else f"{r['median_cpu_s']:.2f}",
                      "-" if r["cpu_x_optuna_help"] is None else f"{r['cpu_x_optuna_help']:.2f}", r["target"],
                      "-" if r["met"] is None else ("yes" if r["met"] else "no"))
    Console(width=150).print(table)
    print(f"saved {path}")


def _target(name: str) -> str:
    if name.startswith("optuna"):
        return "baseline" if name == "optuna --help" else "reference"
    return f"< {DASHBOARD_TARGET_S:g} s" if "dashboard" in name else f"<= {READ_TARGET:g}x optuna --help"


def _met(name: str, median_s: float, baseline_s: float) -> bool | None:
    if name.startswith("optuna"):
        return None
    return median_s < DASHBOARD_TARGET_S if "dashboard" in name else median_s <= READ_TARGET * baseline_s


if __name__ == "__main__":
    main()
