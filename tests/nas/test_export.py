"""Export and import back, for every format: real timm models, real onnxruntime, real TorchScript."""

import json
import re
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
import timm
import torch
from safetensors.torch import load_file

from nas import LatencySettings, ProxySettings, SearchConfig, run_search
from nas.architecture import Architecture, read_architecture, write_architecture
from nas.export import export, load_network
from nas.results import resolve_architecture
from nas.timm_models import register_study
from search_spaces import Genotype, build_model
from storage import Store

from inprocess import run_nas

ROOT = Path(__file__).resolve().parents[2]
TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k5_s2_e3_c16_se0.25"], ["ir_r2_k3_s2_e3_c24_nhs"]],
                              stem_size=8, num_features=64)


@pytest.fixture()
def tiny_file(tmp_path) -> Path:
    return write_architecture(Architecture("tiny-net", TINY, 32, {"note": "test"}), tmp_path / "tiny.json")


def _outputs(model, x):
    with torch.inference_mode():
        return model.eval()(x)


def test_json_and_timm_exports_read_back_in_process(tmp_path, tiny_file):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    network = load_network(str(tiny_file), store, num_classes=10)
    written = export(network, "json", tmp_path / "a.json")
    assert written.max_abs_diff is None and read_architecture(written.path).genotype == TINY
    timm_folder = export(network, "timm", tmp_path / "a-timm")
    assert timm_folder.max_abs_diff <= 1e-4 and not timm_folder.trained and timm_folder.resolution == 32
    config = json.loads((timm_folder.path / "config.json").read_text())
    assert config["architecture"] == "nas_genotype" and config["pretrained_cfg"]["input_size"] == [3, 32, 32]


@pytest.mark.slow
def test_every_format_round_trips_with_the_same_outputs(nas_cli, tiny_file):
    paths = {}
    for fmt, name in (("json", "a.json"), ("timm", "a-timm"), ("onnx", "a.onnx"), ("torchscript", "a.pt")):
        result = nas_cli.json("export", str(tiny_file), "--format", fmt, "-o", name, "--num-classes", "10")
        assert result["format"] == fmt and result["resolution"] == 32 and result["num_classes"] == 10
        assert fmt == "json" or result["max_abs_diff"] <= 1e-4
        paths[fmt] = nas_cli.cwd / name
    arch = read_architecture(paths["json"])
    assert arch.genotype == TINY and arch.resolution == 32 and arch.provenance == {"note": "test"}
    config = json.loads((paths["timm"] / "config.json").read_text())
    assert config["architecture"] == "nas_genotype" and config["pretrained_cfg"]["input_size"] == [3, 32, 32]

    x = torch.randn(3, 3, 32, 32)
    from_json = build_model(arch.genotype, num_classes=10)  # the json file + the timm folder's weights
    from_json.load_state_dict(load_file(paths["timm"] / "model.safetensors"))
    expected = _outputs(from_json, x)
    from_timm = _outputs(timm.create_model(f"local-dir:{paths['timm']}", pretrained=True), x)
    session = onnxruntime.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    from_onnx = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])  # batch 3: the batch dim is dynamic
    from_script = _outputs(torch.jit.load(str(paths["torchscript"])), x)
    assert expected.shape == (3, 10)
    for got in (from_timm, from_onnx, from_script):
        assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_readme_snippet_builds_the_json_with_timm_alone(tiny_file):
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(# timm alone.*?)```", readme, re.S).group(1)
    assert "import nas" not in snippet and "search_spaces" not in snippet
    namespace = {"path": str(tiny_file)}
    exec(snippet, namespace)  # noqa: S102 -- the README's own code, as a reader would paste it
    model = namespace["model"]
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in build_model(TINY).parameters())


@pytest.fixture(scope="module")
def studies_url(tmp_path_factory) -> str:
    """A database with a completed two-trial study ('ok') and one whose only trial failed ('broken')."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'nas.db'}"
    fast = dict(space="tiny", target_latency_ms=2.0, latency=LatencySettings(warmup=1, repeats=3))
    store = Store.open(url)
    run_search(SearchConfig(study="ok", trials=2, proxy=ProxySettings(epochs=1), **fast), store)
    run_search(SearchConfig(study="broken", trials=1, proxy=ProxySettings(epochs=1, lr=float("inf")), **fast), store)
    return url


@pytest.mark.slow
def test_found_architectures_are_in_timms_registry(studies_url, tmp_path):
    store = Store.open(studies_url)
    names = register_study(store, "ok")
    assert names == ["nas_ok_0", "nas_ok_1"]
    assert set(names) <= set(timm.list_models("nas_*"))
    model = timm.create_model(names[1], num_classes=7)
    trial = resolve_architecture("1", store, "ok")
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in build_model(trial.genotype, num_classes=7).parameters())
    assert model.pretrained_cfg["input_size"] == (3, 224, 224)
    # the generic entrypoint: any architecture file's fields, in a fresh process that imports nas's timm models
    code = ("import json, sys, nas.timm_models, timm; d = json.load(open(sys.argv[1])); "
            "m = timm.create_model('nas_genotype', num_classes=5, **{k: d[k] for k in ('arch_def', 'stem_size', "
            "'num_features', 'family', 'act', 'fix_stem')}); print(type(m).__name__, m.num_classes)")
    file = write_architecture(Architecture("tiny-net", TINY), tmp_path / "t.json")
    proc = subprocess.run([sys.executable, "-c", code, str(file)], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["EfficientNet", "5"]


@pytest.mark.slow
def test_a_completed_trial_exports(nas_cli, studies_url):
    result = nas_cli.json("export", "0", "--study", "ok", "--storage", studies_url, "-o", "t0.json")
    assert read_architecture(nas_cli.cwd / result["path"]).provenance["study"] == "ok"


def _one_line_error(args: list[str], cwd: Path, monkeypatch, capsys) -> str:
    """`nas export ARGS` must exit 2 with one line on stderr."""
    monkeypatch.chdir(cwd)
    code, stderr = run_nas(["export", *args], monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["resnet9000"], "not a known architecture"),
    (["tiny.json", "--format", "onnx", "--resolution", "36"], "not divisible by the network's total stride 8"),
    (["tiny.json", "--format", "pdf"], "choose one of json, timm, onnx, torchscript"),
    (["foreign.safetensors", "--format", "onnx"], "not a nas checkpoint"),
])
def test_bad_export_input_gets_one_line(tmp_path, monkeypatch, capsys, args, message):
    write_architecture(Architecture("tiny-net", TINY, 32), tmp_path / "tiny.json")
    (tmp_path / "foreign.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert message in _one_line_error([*args, "--storage", f"sqlite:///{tmp_path / 'nas.db'}"], tmp_path, monkeypatch, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["0", "--study", "broken"], "FAIL trial"),
    (["7", "--study", "ok"], "has no trial 7"),
])
def test_a_trial_that_cannot_export_gets_one_line(studies_url, tmp_path, monkeypatch, capsys, args, message):
    assert message in _one_line_error([*args, "--storage", studies_url], tmp_path, monkeypatch, capsys)
