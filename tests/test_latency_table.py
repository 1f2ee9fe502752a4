"""The per-device latency table on the `tiny` space: real timm layers, real timing, real SQLite."""

import json
import os
import signal
import sqlite3
import subprocess

import numpy as np
import pytest
import torch

from nas.latency import LatencySettings, device_fingerprint
from nas.latency_table import (
    Calibration,
    LatencyPredictor,
    find_predictor,
    network_layers,
    random_networks,
    space_layers,
)
from search_spaces import SEED_NAMES, build_model, get_space, network_parts, seed_architecture

from conftest import NAS, wait_for

RES = ["--resolution", "64"]


@pytest.mark.parametrize("name", SEED_NAMES)
def test_layers_are_exactly_the_network_timm_builds(name):
    """Each computed layer has the input shape it meets in the real network, and the module a
    table would time is the same module (same structure, same weights count)."""
    genotype = seed_architecture(name)
    _check_layers(genotype, 224)


def test_layers_of_random_networks_at_odd_resolutions():
    for genotype in random_networks(get_space("mbconv"), 3, seed=1) + random_networks(get_space("tiny"), 3, seed=1):
        _check_layers(genotype, 97)


def _check_layers(genotype, resolution):
    stem, blocks, head = network_parts(build_model(genotype).eval())
    layers = network_layers(genotype, resolution)
    assert [layer.kind for layer in layers] == ["stem"] + ["block"] * len(blocks) + ["head"]
    x = torch.randn(1, 3, resolution, resolution)
    with torch.no_grad():
        for layer, part in zip(layers, [stem, *blocks, head], strict=True):
            assert tuple(x.shape) == layer.input_shape(), layer.key
            assert str(layer.module()) == str(part), layer.key
            x = part(x)


def test_the_space_enumeration_covers_every_sampled_network():
    layers = space_layers(get_space("tiny"), 64)
    for genotype in random_networks(get_space("tiny"), 50, seed=3):
        assert {layer.key for layer in network_layers(genotype, 64)} <= set(layers)


def test_calibration_recovers_a_known_relation_and_flags_extrapolation():
    rng = np.random.default_rng(0)
    points = []
    for i in range(30):
        features = {"sum_ms": rng.uniform(5, 20), "layers": float(rng.integers(10, 30)),
                    "mparams": rng.uniform(1, 5), "mactivations": rng.uniform(1, 3), "mexpanded": rng.uniform(2, 9)}
        measured = 0.5 + 1.2 * features["sum_ms"] + 0.3 * features["mparams"]
        points.append({"arch_key": str(i), "measured_ms": measured, "features": features})
    calibration = Calibration.fit(points)
    assert set(calibration.features) == {"sum_ms", "mparams"} or calibration.loo_rmse_pct < 1e-6
    probe = {"sum_ms": 10.0, "layers": 20.0, "mparams": 2.0, "mactivations": 2.0, "mexpanded": 5.0}
    assert calibration(probe) == pytest.approx(0.5 + 12 + 0.6, rel=1e-6)
    assert calibration.outside(probe) == []
    assert calibration.outside({**probe, "sum_ms": 80.0})


def test_build_validate_predict_devices(nas_cli):
    built = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "12")
    assert built["entries"] == len(space_layers(get_space("tiny"), 64)) == built["measured_now"] / 3  # 3 rounds each
    assert built["device"] == device_fingerprint(LatencySettings(resolution=64))
    assert built["build_s"] > 0 and built["calibration"]["samples"] == 12

    again = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "12")
    assert again["measured_now"] == 0 and again["build_s"] == pytest.approx(built["build_s"])

    valid = nas_cli.json("latency", "validate", "--space", "tiny", *RES, "--samples", "20")
    assert len(valid["points"]) == 20
    calibrated = {p["arch_key"] for p in _calibration_points(nas_cli)}
    assert len(calibrated) == 12
    assert not calibrated & {p["arch_key"] for p in valid["points"]}  # held-out networks only
    assert valid["within_10pct"] >= 0.7  # tiny networks, and a test machine that is not idle
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


def test_an_interrupted_build_resumes_where_it_stopped(nas_cli):
    args = [*NAS, "latency", "build", "--space", "tiny", "--resolution", "160", "--calibration", "5"]
    proc = subprocess.Popen(args, cwd=nas_cli.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
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


def test_a_table_of_another_device_is_never_used(nas_cli):
    nas_cli("latency", "build", "--space", "tiny", *RES, "--calibration", "6")
    url = f"sqlite:///{nas_cli.cwd / 'nas.db'}"
    here = LatencySettings(resolution=64)
    assert isinstance(find_predictor(url, here, "tiny"), LatencyPredictor)
    assert find_predictor(url, LatencySettings(resolution=96), "tiny") is None  # resolution is part of the device
    assert find_predictor(url, LatencySettings(resolution=64, threads=2), "tiny") is None
    proc = nas_cli("latency", "predict", "mobilenetv2_100", *RES, "--threads", "2", check=False)
    assert proc.returncode == 2 and "no latency table" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

    with sqlite3.connect(nas_cli.cwd / "nas.db") as conn:  # the same rows, now keyed to another CPU
        conn.execute("update nas_latency_tables set device_key = 'elsewhere'")
    assert find_predictor(url, here, "tiny") is None
    proc = nas_cli("search", "--space", "tiny", "--target-latency", "2ms", *RES, "--latency", "lut", check=False)
    assert proc.returncode == 2 and "no latency table calibrated for space 'tiny'" in proc.stderr
    result = nas_cli.json("search", "--space", "tiny", "--target-latency", "2ms", *RES, "--trials", "2", "--epochs", "1")
    assert result["latency_source"] == "measured"


def test_onnxruntime_tables_are_separate_devices(nas_cli):
    torch_table = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "6")
    ort_table = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "6", "--backend", "onnxruntime")
    assert ort_table["device"]["backend"] == "onnxruntime-cpu" and "onnxruntime" in ort_table["device"]
    assert ort_table["table_id"] != torch_table["table_id"] and ort_table["measured_now"] == 3 * ort_table["entries"]
    assert len(nas_cli.json("latency", "devices")) == 2


def test_search_uses_the_table_and_checks_the_best_for_real(nas_cli):
    nas_cli("latency", "build", "--space", "tiny", *RES, "--calibration", "8")
    result = nas_cli.json("search", "--space", "tiny", "--target-latency", "2ms", *RES, "--trials", "4", "--epochs", "1",
                          "--seed-arch", "mobilenetv3_small_100")
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
