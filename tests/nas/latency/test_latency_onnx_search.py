"""ONNX Runtime as a first-class target: a search measured with it, and one predicted from its table,
store trials whose device is ONNX Runtime's (real searches, real timings; nothing timed is compared)."""

import pytest

from conftest import ONE_WORKER

RES = ["--resolution", "64"]
SEARCH = ["search", "--space", "tiny", "--target-latency", "2ms", *RES, "--epochs", "1", "--backend", "onnxruntime",
          *ONE_WORKER]


def _devices(nas_cli) -> list[dict]:
    return [t["device"] for t in nas_cli.json("trials")["trials"] if t["state"] == "COMPLETE"]


@pytest.mark.slow
def test_a_search_measured_with_onnxruntime_stores_its_device(nas_cli):
    result = nas_cli.json(*SEARCH, "--trials", "2", "--latency", "measure")
    assert result["latency_source"] == "measured"
    devices = _devices(nas_cli)
    assert len(devices) == 2
    assert all(d["backend"] == "onnxruntime-cpu" and d["onnxruntime"] and d["allocator"] == "kept" for d in devices)
    assert "onnxruntime-cpu" in nas_cli("trials").stdout


@pytest.mark.slow
def test_a_search_predicted_from_an_onnxruntime_table_stores_its_device(nas_cli):
    table = nas_cli.json("latency", "build", "--space", "tiny", *RES, "--calibration", "5", "--backend", "onnxruntime")
    result = nas_cli.json(*SEARCH, "--trials", "2", "--latency", "lut", "--top", "1")
    assert result["latency_source"] == "lut"
    devices = _devices(nas_cli)
    assert devices and all(d == table["device"] for d in devices)
