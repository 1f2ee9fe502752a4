"""`nas latency build|validate|predict|devices`: the commands' plumbing and output.

The quick test runs the commands in-process on a stand-in for the clock (every forward pass
"takes" a time fixed by the model's size); the slow ones run the real command on real timings
and check only what is stored, flagged and refused, never how accurate a timing was.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nas.latency
import nas.latency.measure
from nas.cli import app
from nas.latency import LatencySettings, Measurement, device_fingerprint, space_layers
from search_spaces import build_model, get_space

from conftest import NAS, ONE_WORKER, cli_env, wait_for

RES = ["--resolution", "64"]
TABLE = ["latency", "build", "--space", "tiny", *RES, "--calibration", "8"]


@pytest.fixture(scope="module")
def built_table(tmp_path_factory) -> Path:
    """A database holding this machine's real table for the tiny space, built once (a build is the
    slowest step of these tests) for the tests that use a table rather than test its building."""
    folder = tmp_path_factory.mktemp("tiny-table")
    built = subprocess.run([*NAS, *TABLE], cwd=folder, env=cli_env(), capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    return folder / "nas.db"


def _with_table(nas_cli, built_table: Path) -> None:
    shutil.copy(built_table, nas_cli.cwd / "nas.db")


def _sized_latency(model, settings, input_shape=None) -> Measurement:
    """A latency fixed by the model's weights: deterministic, and different across networks."""
    latency = 0.05 + sum(p.numel() for p in model.parameters()) / 1e5
    return Measurement(latency, 0.01, settings.repeats * settings.passes, 0.5, (latency,) * settings.passes)


def test_commands_print_tables_and_json(tmp_path, monkeypatch):
    monkeypatch.setattr(nas.latency.measure, "measure_latency", _sized_latency)
    monkeypatch.setattr(nas.latency, "measure_network",
                        lambda genotype, settings, norm="bn": _sized_latency(build_model(genotype), settings))
    monkeypatch.chdir(tmp_path)
    storage = ["--storage", f"sqlite:///{tmp_path / 'nas.db'}"]

    def run(*args):
        result = CliRunner().invoke(app, ["latency", *args, *storage], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    built = json.loads(run("build", "--space", "tiny", *RES, "--calibration", "6", "--json"))
    assert list(built) == ["table_id", "device", "space", "entries", "measured_now", "build_s", "calibration"]
    assert built["entries"] == len(space_layers(get_space("tiny"), 64)) and "points" not in built["calibration"]
    assert "latency table for" in run("build", "--space", "tiny", *RES, "--calibration", "6")

    text = run("validate", "--space", "tiny", *RES, "--samples", "5", "-o", "plot.html")
    assert "within +-10%" in text and "scatter plot: plot.html" in text and (tmp_path / "plot.html").exists()
    valid = json.loads(run("validate", "--space", "tiny", *RES, "--samples", "5", "--json"))
    assert valid["plot"] == "latency-validation-tiny.html" and len(valid["points"]) == 5 and valid["samples"] == 5

    devices = json.loads(run("devices", "--json"))
    assert devices[0]["spaces"][0]["validation"] == {k: v for k, v in valid.items() if k not in ("plot", "points")}
    assert "of 5" in run("devices")

    seed = json.loads(run("predict", "mobilenetv3_small_100", *RES, "--measure", "--json"))
    assert list(seed) == ["name", "predicted_ms", "sum_ms", "calibrated_on", "extrapolated", "layers_measured_now",
                          "predict_us", "device", "measured_ms", "spread_ms", "error_pct"]
    assert seed["layers_measured_now"] > 0 and seed["extrapolated"] and seed["calibrated_on"] == "tiny"
    plain = json.loads(run("predict", "mobilenetv3_small_100", *RES, "--json"))
    assert "measured_ms" not in plain and plain["layers_measured_now"] == 0 and plain["predicted_ms"] == seed["predicted_ms"]
    assert "mobilenetv3_small_100: predicted" in run("predict", "mobilenetv3_small_100", *RES, "--no-fill")


@pytest.mark.slow
def test_build_validate_predict_devices(nas_cli):
    built = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "12")
    assert built["entries"] == len(space_layers(get_space("tiny"), 64)) == built["measured_now"] / 3  # 3 rounds each
    assert built["device"] == device_fingerprint(LatencySettings(resolution=64))
    assert built["build_s"] > 0 and built["calibration"]["samples"] == 12

    again = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "12")
    assert again["measured_now"] == 0 and again["build_s"] == pytest.approx(built["build_s"])

    valid = nas_cli.json("latency", "validate", "--space", "tiny", *RES, "--samples", "20")
    assert len(valid["points"]) == 20 and all(p["measured_ms"] > 0 and len(p["pass_ms"]) == 3 for p in valid["points"])
    calibrated = {p["arch_key"] for p in _calibration_points(nas_cli)}
    assert len(calibrated) == 12
    assert not calibrated & {p["arch_key"] for p in valid["points"]}  # held-out networks only
    assert (nas_cli.cwd / "latency-validation-tiny.html").stat().st_size > 10_000

    devices = nas_cli.json("latency", "devices")
    assert len(devices) == 1 and devices[0]["entries"] == built["entries"]
    assert devices[0]["spaces"][0]["validation"]["samples"] == 20

    seed = nas_cli.json("latency", "predict", "mobilenetv3_small_100", *RES, "--measure")
    assert seed["layers_measured_now"] > 0  # outside the tiny space: measured once, then stored
    assert seed["extrapolated"]  # and flagged: the calibration saw only tiny networks
    repeat = nas_cli.json("latency", "predict", "mobilenetv3_small_100", *RES)
    assert repeat["layers_measured_now"] == 0 and repeat["predicted_ms"] == pytest.approx(seed["predicted_ms"])
    assert seed["measured_ms"] > 0 and seed["error_pct"] == pytest.approx(100 * (seed["predicted_ms"] / seed["measured_ms"] - 1))


def _calibration_points(nas_cli):
    with sqlite3.connect(nas_cli.cwd / "nas.db") as conn:
        (calibration,) = conn.execute("select calibration from nas_latency_models").fetchone()
    return json.loads(calibration)["points"]


@pytest.mark.slow
def test_a_killed_build_resumes_where_it_stopped(nas_cli, spawn):
    args = [*NAS, "latency", "build", "--space", "tiny", "--resolution", "160", "--calibration", "5"]
    proc = spawn(args, cwd=nas_cli.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = nas_cli.cwd / "nas.db"

    def rounds() -> int:
        try:
            with sqlite3.connect(db) as conn:
                return conn.execute("select coalesce(sum(passes), 0) from nas_latency_entries").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    wait_for(lambda: rounds() >= 10, timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = rounds()
    total = len(space_layers(get_space("tiny"), 160))
    assert 10 <= kept < 3 * total
    resumed = nas_cli.json(*args[3:])
    assert resumed["measured_now"] == 3 * total - kept and resumed["entries"] == total and rounds() == 3 * total


@pytest.mark.slow
def test_a_table_of_another_device_is_never_used(nas_cli, built_table):
    _with_table(nas_cli, built_table)
    proc = nas_cli("latency", "predict", "mobilenetv2_100", *RES, "--threads", "2", check=False)
    assert proc.returncode == 2 and "no latency table" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

    with sqlite3.connect(nas_cli.cwd / "nas.db") as conn:  # the same rows, now keyed to another CPU
        conn.execute("update nas_latency_tables set device_key = 'elsewhere'")
    proc = nas_cli("search", "--space", "tiny", "--target-latency", "2ms", *RES, "--latency", "lut", check=False)
    assert proc.returncode == 2 and "no latency table calibrated for space 'tiny'" in proc.stderr
    result = nas_cli.json("search", "--space", "tiny", "--target-latency", "2ms", *RES, "--trials", "2", "--epochs", "1",
                          *ONE_WORKER)
    assert result["latency_source"] == "measured"


@pytest.mark.slow
def test_onnxruntime_tables_are_separate_devices(nas_cli, built_table):
    _with_table(nas_cli, built_table)
    torch_table = nas_cli.json(*TABLE)
    assert torch_table["measured_now"] == 0  # the copied table is this machine's
    ort_table = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "6", "--backend", "onnxruntime")
    assert ort_table["device"]["backend"] == "onnxruntime-cpu" and "onnxruntime" in ort_table["device"]
    assert ort_table["table_id"] != torch_table["table_id"] and ort_table["measured_now"] == 3 * ort_table["entries"]
    assert len(nas_cli.json("latency", "devices")) == 2


@pytest.mark.slow
def test_search_uses_the_table_and_checks_the_best_for_real(nas_cli, built_table):
    _with_table(nas_cli, built_table)
    result = nas_cli.json("search", "--space", "tiny", "--target-latency", "2ms", *RES, "--trials", "4", "--epochs", "1",
                          "--seed-arch", "mobilenetv3_small_100", *ONE_WORKER)
    assert result["latency_source"] == "lut"
    trials = nas_cli.json("trials")["trials"]
    sources = {t["number"]: t["latency_source"] for t in trials if t["state"] == "COMPLETE"}
    searched = [t for t in trials if t["state"] == "COMPLETE" and t["seed_arch"] is None]
    assert all(t["latency_predicted_ms"] is not None for t in searched)
    seed = next(t for t in trials if t["seed_arch"])
    assert seed["latency_source"] == "measured" and seed["latency_predicted_ms"] is None  # outside the table
    checked = {c["trial"]: c for c in result["checks"]}
    assert checked and all(sources[n] == "checked" for n in checked)
    for n, check in checked.items():
        assert check["predicted_ms"] == pytest.approx(next(t["latency_predicted_ms"] for t in trials if t["number"] == n))
    best = nas_cli.json("best")["best"]
    assert {b["number"]: b["latency_ms"] for b in best if b["number"] in checked} == \
        {n: pytest.approx(c["measured_ms"]) for n, c in checked.items()}
