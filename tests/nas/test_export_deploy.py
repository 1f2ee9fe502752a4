"""Exports carry the condition their latency holds in, and `nas latency check` times them as deployed:
real exports, timed for real in a fresh process; only what is printed and stored is checked, never
how fast anything ran."""

import json
from pathlib import Path

import pytest

from nas.architecture import Architecture, write_architecture
from nas.export import export, load_network
from nas.latency import describe
from nas.latency.allocator import KEPT_ENVIRONMENT
from nas.latency.deployment import read_deployment
from search_spaces import Genotype
from storage import Store

from inprocess import run_nas

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k5_s2_e3_c16_se0.25"], ["ir_r2_k3_s2_e3_c24_nhs"]],
                              stem_size=8, num_features=64)
QUICK = ["--passes", "1"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The tiny network exported once per format, at 32 px."""
    folder = tmp_path_factory.mktemp("exports")
    arch = write_architecture(Architecture("tiny-net", TINY, 32, {}), folder / "tiny.json")
    network = load_network(str(arch), Store.open(f"sqlite:///{folder / 'nas.db'}"), num_classes=10)
    return {fmt: export(network, fmt, folder / name).path
            for fmt, name in (("torchscript", "tiny.pt"), ("onnx", "tiny.onnx"), ("timm", "tiny-timm"))}


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "timm"])
def test_an_export_carries_nas_figure_fingerprint_and_environment(exported, fmt):
    path = exported[fmt]
    deployment = read_deployment(path)
    assert deployment.name == "tiny-net" and deployment.format == fmt and deployment.latency_ms > 0
    assert deployment.runtime == ("onnxruntime" if fmt == "onnx" else "torch")
    assert deployment.device["backend"] == ("onnxruntime-cpu" if fmt == "onnx" else "torch-cpu")
    assert deployment.device["allocator"] == "kept" and deployment.device["resolution"] == 32
    assert deployment.environment == {"OMP_NUM_THREADS": "1", **KEPT_ENVIRONMENT}
    notes = (path / "DEPLOY.md" if path.is_dir() else path.with_name(path.name + ".DEPLOY.md")).read_text()
    assert f"{deployment.latency_ms:.2f} ms" in notes and f"{deployment.runtime} {deployment.runtime_version}" in notes
    for key, value in deployment.device.items():
        assert f"| {key} | {value} |" in notes
    env = " ".join(f"{k}={v}" for k, v in deployment.environment.items())
    assert f"{env} nas latency check {path.name}" in notes


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_check_prints_the_deployed_latency_beside_nas_figure(exported, nas_cli, fmt):
    path = exported[fmt]
    nas_ms = read_deployment(path).latency_ms
    proc = nas_cli("latency", "check", str(path), *QUICK)
    line = proc.stdout.replace("\n", " ")
    assert proc.returncode == 0 and " ms deployed (" in line and f"nas measured {nas_ms:.2f} ms" in line and "ratio" in line
    kept = nas_cli.json("latency", "check", str(path), *QUICK, *(f"--env={k}={v}" for k, v in KEPT_ENVIRONMENT.items()))
    assert kept["allocator"] == "kept" and kept["environment"].items() >= KEPT_ENVIRONMENT.items()
    assert kept["nas_ms"] == pytest.approx(nas_ms) and kept["ratio"] == pytest.approx(kept["latency_ms"] / nas_ms)
    assert kept["runtime"] == ("onnxruntime" if fmt == "onnx" else "torch") and kept["resolution"] == 32
    assert "allocator kept" in describe(kept["nas_device"])
    default = nas_cli.json("latency", "check", str(path), *QUICK, *(f"--unset={k}" for k in KEPT_ENVIRONMENT))
    assert default["allocator"] == "default" and not default["environment"].keys() & KEPT_ENVIRONMENT.keys()


def test_check_times_a_timm_folder_and_a_foreign_model_without_a_figure(exported, nas_cli, tmp_path):
    folder = nas_cli.json("latency", "check", str(exported["timm"]), *QUICK)
    assert folder["runtime"] == "torch" and folder["nas_ms"] is not None
    foreign = tmp_path / "foreign.pt"
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 3)), str(foreign))
    proc = nas_cli("latency", "check", str(foreign), "--resolution", "32", *QUICK)
    assert "no figure of nas's inside this model" in proc.stdout.replace("\n", " ")
    assert json.loads(nas_cli("latency", "check", str(foreign), "--resolution", "32", *QUICK, "--json").stdout)["ratio"] is None


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere.onnx"], "no model at nowhere.onnx"),
    ([".", "--env", "NOEQUALS"], "--env takes NAME=VALUE"),
    ([".", "--passes", "0"], "at least 3 timed runs, one pass"),
    (["."], "folder without config.json"),
])
def test_bad_check_input_gets_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    code, err = run_nas(["latency", "check", *args], monkeypatch, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
