"""How a computing nas process starts: what it imports before it needs it, and the collector
threshold `import nas` sets (their cost: `bench/startup.py`)."""

import json
import subprocess
import sys

import nas

# a search's command and worker processes, and the measuring child each of them starts
COMPUTING = "import nas.search, nas.workers, nas.latency.isolated"
ONLY_ON_USE = ("sklearn", "optuna_dashboard")  # a calibration fit or the built-in digits; a trial's note


def _start(before: str = "") -> dict:
    code = (f"import gc, json, sys; {before}import nas; {COMPUTING}; "
            f"print(json.dumps({{'threshold': gc.get_threshold(), 'loaded': [m for m in {ONLY_ON_USE!r} if m in sys.modules]}}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(proc.stdout)


def test_a_computing_process_loads_neither_scikit_learn_nor_the_dashboard_until_it_uses_them():
    started = _start()
    assert started["loaded"] == []
    assert started["threshold"][0] == nas.YOUNG_THRESHOLD > nas.CPYTHON_YOUNG_THRESHOLD


def test_a_collector_threshold_set_before_nas_is_kept():
    assert _start("gc.set_threshold(500, 7, 9); ")["threshold"] == [500, 7, 9]
