"""The dashboard and the report at scale: a study of 5,000 synthetic mbconv trials (no training),
then `nas report` render time and optuna-dashboard API response times through the real server.

    python bench/report_scale.py [--trials 5000] [--json]

Trials carry what a real search stores: sampled mbconv parameters and their arch_def, the storage
contract's user attributes (latency, accuracy, params, MACs, device; intermediate values;
pruned and failed trials), and each trial's note and architecture artifact as `nas search`
writes them. Latency and accuracy follow the sampled network's size with noise. The API is timed
twice: on the bare trials, then with notes and artifacts (optuna-dashboard scans all of a
study's attributes for every trial's note, so notes cost most at scale). The database lives on
tmpfs when /dev/shm exists. Filling 5,000 trials through Optuna took ~6 minutes on a loaded
2-core machine, the whole run ~10.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from optuna_dashboard._note import note_ver_key, split_body  # the note's storage format
from rich.console import Console
from rich.table import Table

from _common import save
from nas.notes import ARCHITECTURE_FILE, artifact_dir, artifact_links, trial_note
from nas.results import trial_architecture
from storage import Store, TrialRecord
from search_spaces import get_space
from storage import open_optuna_storage

TARGET_MS = 20.0
DEVICE = {"cpu": "synthetic", "threads": 1, "backend": "torch-cpu", "torch": "2.x", "resolution": 224, "batch": 1}
STUDY_ATTRS = {"space": "mbconv", "target_latency_ms": TARGET_MS, "reward": "soft", "reward_weight": None,
               "dataset": "digits", "device": DEVICE, "proxy": {"epochs": 4}}


class _Picker:
    """Samples a space's parameters like a random sampler, recording their distributions."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.params, self.distributions = rng, {}, {}

    def suggest_categorical(self, name: str, choices: list) -> object:
        self.distributions[name] = CategoricalDistribution(choices)
        self.params[name] = choices[int(self.rng.integers(len(choices)))]
        return self.params[name]


def synthetic_trials(n: int, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    rng = np.random.default_rng(seed)
    space = get_space("mbconv")
    trials = []
    for _ in range(n):
        picker = _Picker(rng)
        genotype = space.sample(picker)
        size = sum(b.out_chs * b.repeats * (b.exp_ratio or 1.0) for stage in genotype.stages for b in stage) / 2500 - 1
        latency = 0.75 * TARGET_MS * math.exp(0.45 * size + rng.normal(0, 0.08))
        accuracy = float(np.clip(0.9 + 0.04 * math.tanh(size) + rng.normal(0, 0.012), 0, 1))
        attrs = {"arch_def": genotype.arch_def, "network": genotype.network(), "arch_key": genotype.key,
                 "params": int(4e6 * math.exp(0.5 * size + rng.normal(0, 0.05))),
                 "macs": int(300e6 * math.exp(0.6 * size + rng.normal(0, 0.05))), "latency_ms": latency,
                 "latency_spread_ms": latency * 0.03, "load_avg": 1.0, "device": DEVICE, "accuracy": accuracy,
                 "timings_s": {"train_s": 20.0, "latency_s": 3.0}}
        reward = accuracy * (latency / TARGET_MS) ** -0.07
        roll = rng.random()
        if roll < 0.05:
            state, value, steps = TrialState.FAIL, None, 0
            attrs["fail_reason"] = "TrainingDiverged: non-finite loss at step 12"
        elif roll < 0.2:
            state, value, steps = TrialState.PRUNED, None, 2
        else:
            state, value, steps = TrialState.COMPLETE, reward, 4
        artifact_id = f"{len(trials):08d}-0000-4000-8000-000000000000"  # the architecture file, as the search attaches it
        meta = {"artifact_id": artifact_id, "filename": ARCHITECTURE_FILE, "mimetype": "application/json", "encoding": None}
        trials.append(create_trial(state=state, value=value, params=picker.params, distributions=picker.distributions,
                                   user_attrs=attrs, system_attrs={f"{ARTIFACTS_ATTR_PREFIX}{artifact_id}": json.dumps(meta)},
                                   intermediate_values={e: reward * (0.7 + 0.1 * e) for e in range(steps)}))
    return trials


def fill_study(url: str, n: int) -> optuna.Study:
    study = optuna.create_study(study_name="scale", storage=open_optuna_storage(url), direction="maximize")
    for key, value in STUDY_ATTRS.items():
        study.set_user_attr(key, value)
    study.set_metric_names(["reward"])
    study.add_trials(synthetic_trials(n))
    return study


def add_notes(study: optuna.Study, url: str) -> None:
    """Each trial's architecture file and note, as the search writes them; the note goes straight
    through the storage (``save_note`` re-reads the study's attributes for every note)."""
    storage, folder = study._storage, artifact_dir(url)
    folder.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(folder)
    for trial in study.get_trials(deepcopy=False):
        architecture = trial_architecture(study.study_name, TrialRecord.from_trial(trial))
        for key, value in trial.system_attrs.items():
            if key.startswith(ARTIFACTS_ATTR_PREFIX):
                store.write(json.loads(value)["artifact_id"], io.BytesIO(json.dumps(architecture.to_dict()).encode()))
        storage.set_study_system_attr(study._study_id, note_ver_key(trial._trial_id), 1)
        note = trial_note(trial, ["reward"], artifact_links(storage, study, trial))
        for key, chunk in split_body(note, trial._trial_id).items():
            storage.set_study_system_attr(study._study_id, key, chunk)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 600) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        size = len(response.read())
    return time.perf_counter() - start, size


def time_api(storage_url: str, study_id: int, n: int, cwd: Path) -> dict[str, float]:
    """Response times of the real `nas dashboard` server: cold and warm study detail, the poll
    the page repeats (`?after=N`), the study list and the page itself."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "nas", "dashboard", "--storage", storage_url, "--port", str(port)],
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                _get(f"{base}/api/meta", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        detail = f"{base}/api/studies/{study_id}"
        cold, size = _get(detail)
        warm = statistics.median(_get(detail)[0] for _ in range(3))
        return {"study_detail_cold_s": cold, "study_detail_warm_s": warm, "study_detail_mb": size / 1e6,
                "poll_after_s": statistics.median(_get(f"{detail}?after={n}")[0] for _ in range(3)),
                "study_list_s": _get(f"{base}/api/studies")[0], "page_s": _get(f"{base}/dashboard")[0]}
    finally:
        server.terminate()
        server.wait(timeout=30)


def time_lookups(url: str, study_id: int) -> dict[str, float]:
    """The study detail request in-process, optuna-dashboard's own note lookups against the grouped
    ones (``dashboards.attr_index``), alternated so both see the same machine."""
    from wsgiref.util import setup_testing_defaults

    from dashboards.server import dashboard_app

    def request(app) -> tuple[float, bytes]:
        environ = {"PATH_INFO": f"/api/studies/{study_id}", "QUERY_STRING": ""}
        setup_testing_defaults(environ)
        start = time.perf_counter()
        body = b"".join(app(environ, lambda status, headers, exc_info=None: None))
        return time.perf_counter() - start, body

    store = Store.open(url)
    apps = {"stock": dashboard_app(store, artifact_dir(url), indexed=False), "grouped": dashboard_app(store, artifact_dir(url))}
    times: dict[str, list[float]] = {name: [] for name in apps}
    bodies = {}
    for _ in range(2):
        for name, app in apps.items():
            elapsed, bodies[name] = request(app)
            times[name].append(elapsed)
    assert bodies["stock"] == bodies["grouped"], "the grouped lookups must serve the same study"
    stock, grouped = min(times["stock"]), min(times["grouped"])
    return {"study_detail_stock_s": stock, "study_detail_grouped_s": grouped, "speedup": stock / grouped}


def time_report(storage_url: str, cwd: Path) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nas", "report", "--storage", storage_url, "-o", "report.html", "--json"],
                          cwd=cwd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    return {"report_cli_s": wall, "report_in_command_s": json.loads(done.stdout)["wall_s"],
            "report_mb": (cwd / "report.html").stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        cwd = Path(tmp)
        url = f"sqlite:///{cwd / 'nas.db'}"
        start = time.perf_counter()
        study = fill_study(url, args.trials)
        fill_s = time.perf_counter() - start
        bare = time_api(url, study._study_id, args.trials, cwd)
        start = time.perf_counter()
        add_notes(study, url)
        notes_s = time.perf_counter() - start
        noted = time_api(url, study._study_id, args.trials, cwd)
        lookups = time_lookups(url, study._study_id)
        report = time_report(url, cwd)
    figures = {"trials": args.trials, "fill_s": fill_s, "notes_s": notes_s, "report": report,
               "api_without_notes": bare, "api_with_notes": noted, "note_lookups": lookups}
    path = save("report_scale", figures)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"report and dashboard with {args.trials} trials (SQLite on {'tmpfs' if os.path.isdir('/dev/shm') else 'disk'})")
    for column in ("what", "without notes", "with notes and artifacts"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for key in bare:
        unit = "MB" if key.endswith("_mb") else "s"
        table.add_row(f"dashboard {key.removesuffix('_s').removesuffix('_mb').replace('_', ' ')} ({unit})",
                      f"{bare[key]:.2f}", f"{noted[key]:.2f}")
    table.add_row("study detail in-process, optuna-dashboard's lookups (s)", "", f"{lookups['study_detail_stock_s']:.2f}")
    table.add_row("study detail in-process, grouped lookups (s)", "", f"{lookups['study_detail_grouped_s']:.2f}")
    table.add_row("`nas report` wall (s)", "", f"{report['report_cli_s']:.2f}")
    table.add_row("  of which reading and drawing (s)", "", f"{report['report_in_command_s']:.2f}")
    table.add_row("report file (MB)", "", f"{report['report_mb']:.2f}")
    Console(width=120).print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
