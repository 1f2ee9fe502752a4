"""SIGTERM in every long command takes Ctrl-C's path: one line saying how to resume, exit 143,
and the same command resumes (``nas.errors.EXIT_TERMINATED``)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from nas.architecture import Architecture, write_architecture
from nas.errors import EXIT_INTERRUPTED, EXIT_TERMINATED
from search_spaces import Genotype

from conftest import NAS, completed_trials, wait_for

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16"]], stem_size=8, num_features=32)
COMMANDS = {  # command -> (what shows it is at work, the resume advice it must print)
    "search": (["search", "--space", "tiny", "--target-latency", "5ms", "--trials", "50", "--epochs", "1"],
               "nas.db", "run the same command"),
    "latency build": (["latency", "build", "--space", "tiny", "--resolution", "64"], "nas.db", "run the same command"),
    "scale grid": (["scale", "grid", "tiny.json", "--epochs", "1", "--step", "0.1"], "nas.db", "run the same command"),
    "train": (["train", "tiny.json", "--epochs", "50", "--resolution", "32", "-o", "run"], "run/checkpoint.safetensors",
              "--resume"),
}

pytestmark = pytest.mark.slow  # real processes doing real work


@pytest.mark.parametrize("name", list(COMMANDS))
def test_sigterm_prints_the_resume_line_and_exits_143(name, tmp_path, spawn):
    args, busy, advice = COMMANDS[name]
    write_architecture(Architecture("tiny-net", TINY, 32), tmp_path / "tiny.json")
    env = {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    env.pop("NAS_STORAGE", None)
    proc = spawn([*NAS, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (tmp_path / busy).exists() or proc.poll() is not None, timeout=300)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_TERMINATED, err
    assert "Traceback" not in err and any(line.startswith("interrupted:") and advice in line for line in err.splitlines())


EXEC_INTERRUPTED = """
import nas.cli

def command(standalone_mode):  # Ctrl-C landing while alembic builds a method from a string
    exec("raise KeyboardInterrupt")

nas.cli.app = command
nas.cli.main()
"""


def test_an_interrupt_inside_an_exec_still_exits_with_the_interrupted_code(tmp_path):
    """CPython ends a ``python -m`` process by SIGINT after such an interrupt unless nas clears the mark."""
    (tmp_path / "exec_interrupted.py").write_text(EXEC_INTERRUPTED)
    done = subprocess.run([NAS[0], "-m", "exec_interrupted"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_INTERRUPTED and done.stderr.startswith("interrupted:"), done.stderr


def test_sigterm_of_a_ray_search_takes_the_same_path(tmp_path, spawn):
    """Ray's driver installs a SIGTERM handler that prints a stack dump and aborts (exit -6, no resume
    line); nas puts its own back once Ray has started."""
    env = {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    env.pop("NAS_STORAGE", None)
    proc = spawn([*NAS, "search", "--space", "tiny", "--target-latency", "5ms", "--trials", "400", "--workers", "2",
                  "--runner", "ray"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: completed_trials(tmp_path / "nas.db") >= 1 or proc.poll() is not None, timeout=300)  # Ray runs trials
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_TERMINATED, err
    assert "Traceback" not in err and "SIGTERM received" not in err
    assert any(line.startswith("interrupted:") and "run the same command" in line for line in err.splitlines())
