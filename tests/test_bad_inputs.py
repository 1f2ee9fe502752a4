"""Bad input to every command: exit 2, one line naming what is wrong, no traceback, nothing stored changed.

Each case runs the real CLI in-process (``tests/inprocess.py``) in a folder holding a real study
database (``nas.db``, the default storage) and a set of bad files; the database must be
byte-for-byte what it was, and no other database may appear.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from nas import ProxySettings, SearchConfig, run_search
from nas.architecture import Architecture, write_architecture
from search_spaces import Genotype
from storage import Store

from fakes import BlockLatency, WidthAccuracy
from inprocess import run_nas

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k5_s2_e3_c16_se0.25"], ["ir_r2_k3_s2_e3_c24_nhs"]],
                              stem_size=8, num_features=64)
BAD_FILES = {  # name -> content: architecture files and checkpoints that are not what they claim
    "not-json.json": "{arch_def: oops",
    "no-arch.json": json.dumps({"stem_size": 8}),
    "bad-token.json": json.dumps({"arch_def": [["ir_r1_k3_s1_e6_c16_zz9"]]}),
    "empty-stage.json": json.dumps({"arch_def": [[]]}),
    "bad-resolution.json": json.dumps({**TINY.to_dict(), "resolution": "big"}),
    "bad-family.json": json.dumps({**TINY.to_dict(), "family": "resnet"}),
    "bad-stem.json": json.dumps({**TINY.to_dict(), "stem_size": "wide"}),
    "a-list.json": "[1, 2, 3]",
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "notes.txt": "precious notes, not a database",
}
BAD_BYTES = {
    "foreign.safetensors": b"PK\x03\x04 a zip file, not a checkpoint",
    "truncated.safetensors": b"\x40\x00\x00\x00\x00\x00\x00\x00{\"w\": {\"dtype\": \"F32\", \"sha",
    "image.png": b"\x89PNG\r\n\x1a\n truncated",
}

CASES: list[tuple[list[str], str]] = [
    # units
    (["search", "--space", "tiny", "--target-latency", "20"], "has no unit"),
    (["search", "--space", "tiny", "--target-latency", "-5ms"], "greater than zero"),
    (["search", "--space", "tiny", "--target-latency", "0ms"], "greater than zero"),
    (["search", "--space", "tiny", "--target-latency", "abc"], "not a number"),
    (["search", "--space", "tiny", "--target-latency", "5parsecs"], "unknown unit"),
    (["search", "--space", "tiny", "--target-latency", "1e999ms"], "greater than zero"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--timeout", "30"], "--timeout"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--timeout", "2 weeks"], "unknown unit"),
    (["best", "--target-latency", "15"], "has no unit"),
    # unknown names
    (["search", "--target-latency", "5ms", "--space", "nope"], "valid spaces"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--seed-arch", "resnet9000"], "known: mobilenetv1_100"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--reward", "bogus"], "bogus"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--objective", "bogus"], "choose one of"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--sampler", "bogus"], "choose one of"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--pruner", "bogus"], "choose one of"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--latency", "maybe"], "choose one of"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--estimator", "bogus"], "bogus"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--backend", "tpu"], "tpu"),
    (["best", "--reward", "bogus"], "bogus"),
    (["show", "resnet9000"], "not a known architecture"),
    (["export", "resnet9000"], "not a known architecture"),
    (["export", "tiny.json", "--format", "pdf"], "choose one of json, timm, onnx, torchscript"),
    (["train", "tiny.json", "--norm", "ln"], "choose one of bn, gn-ws"),
    (["baselines", "--models", "resnet9000"], "resnet9000"),
    (["scale", "grid", "resnet9000", "--dry-run"], "not a known architecture"),
    (["scale", "show", "efficientnet_b0", "--phi", "1", "--family", "resnet"], "known: efficientnet"),
    (["latency", "build", "--space", "nope"], "nope"),
    (["latency", "build", "--space", "tiny", "--backend", "tpu"], "tpu"),
    (["latency", "predict", "resnet9000"], "not a known architecture"),
    (["estimators", "reference", "--space", "nope"], "nope"),
    (["estimators", "rank", "--estimator", "bogus"], "bogus"),
    (["supernet", "train", "--space", "nope"], "nope"),
    (["nosuchcommand"], "No such command"),
    # ranges
    (["search", "--space", "tiny", "--target-latency", "5ms", "--trials", "0"], "--trials must be >= 1"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--trials", "many"], "--trials"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--reward-weight", "0.5"], "weight"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--epochs", "0"], "epochs"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--batch-size", "0"], "batch"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--threads", "0"], "threads"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--estimator", "hybrid:synflow:0"], "hybrid"),
    (["best", "--top", "0"], "--top must be >= 1"),
    (["export", "tiny.json", "--num-classes", "0"], "--num-classes must be >= 1"),
    (["train", "tiny.json", "--epochs", "many"], "--epochs must be 'auto' or a number"),
    (["train", "tiny.json", "--mixup", "lots"], "--mixup must be 'auto' or a number"),
    (["train", "tiny.json", "--micro-batch", "0"], "--micro-batch must be >= 1"),
    (["train", "tiny.json", "--lr", "fast"], "--lr must be 'auto' or a number"),
    (["train", "tiny.json", "--lr", "-0.1"], "--lr must be > 0"),
    (["baselines", "--models", "mobilenetv2_100", "--sched", "linear"], "--sched: unknown 'linear'"),
    (["baselines", "--models", "resnet18", "--epochs", "many"], "--epochs must be 'auto' or a number"),
    (["scale", "family", "efficientnet_b0", "--alpha", "0.9", "--no-measure"], "alpha must be >= 1"),
    (["scale", "family", "efficientnet_b0", "--phi", "-1..3", "--no-measure"], "--phi must be >= 0"),
    (["scale", "family", "efficientnet_b0", "--phi", "a..b", "--no-measure"], "--phi"),
    (["scale", "grid", "efficientnet_b0", "--step", "0.5", "--tolerance", "0.1", "--max", "1.5", "--dry-run"],
     "--tolerance"),
    (["latency", "build", "--space", "tiny", "--threads", "0"], "threads"),
    (["latency", "validate", "--space", "tiny", "--samples", "0"], "samples"),
    (["supernet", "train", "--space", "tiny", "--epochs", "0"], "epochs"),
    (["dashboard", "--port", "0"], "--port must be between 1 and 65535"),
    (["dashboard", "--port", "70000"], "--port must be between 1 and 65535"),
    (["dashboard", "--host", "0.0.0.0"], "add --allow-remote"),
    (["supernet", "train", "--space", "tiny", "--name", "../../escape"], "not a plain name"),
    # resolutions
    (["search", "--space", "tiny", "--target-latency", "5ms", "--resolution", "5"], "resolution"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--proxy-resolution", "3"], "resolution"),
    (["show", "tiny.json", "--resolution", "5"], "--resolution must be between 32 and 1024"),
    (["export", "tiny.json", "--format", "onnx", "--resolution", "36"], "not divisible by the network's total stride 8"),
    (["train", "tiny.json", "--resolution", "20"], "not divisible by the network's total stride 8"),
    (["latency", "build", "--space", "tiny", "--resolution", "7"], "resolution"),
    # trial references
    (["show", "99"], "has no trial 99"),
    (["show", "0", "--study", "nope"], "no study named 'nope'"),
    (["export", "99"], "has no trial 99"),
    (["train", "99"], "has no trial 99"),
    (["trials", "--study", "nope"], "no study named 'nope'"),
    (["best", "--study", "nope"], "no study named 'nope'"),
    (["report", "--study", "nope"], "no study named 'nope'"),
    (["search", "--space", "tiny", "--target-latency", "9ms", "--study", "s"], "target_latency_ms"),
    # malformed architecture files and block strings
    (["show", "not-json.json"], "not an architecture file"),
    (["show", "no-arch.json"], "needs an 'arch_def' key"),
    (["show", "bad-token.json"], "bad token 'zz9'"),
    (["show", "empty-stage.json"], "no empty stage"),
    (["show", "bad-resolution.json"], "resolution must be an integer"),
    (["show", "bad-family.json"], "unknown family 'resnet'"),
    (["show", "bad-stem.json"], "not an architecture file"),
    (["show", "a-list.json"], "not an architecture file"),
    (["show", "deep.json"], "not an architecture file"),
    (["train", "bad-token.json"], "bad token 'zz9'"),
    (["latency", "predict", "not-json.json"], "not an architecture file"),
    (["scale", "grid", "no-arch.json", "--dry-run"], "needs an 'arch_def' key"),
    # foreign or truncated checkpoints
    (["export", "foreign.safetensors", "--format", "onnx"], "not a nas checkpoint"),
    (["export", "truncated.safetensors", "--format", "onnx"], "not a nas checkpoint"),
    (["train", "tiny.json", "--init", "foreign.safetensors"], "not a nas checkpoint"),
    (["train", "tiny.json", "--init", "truncated.safetensors"], "not a nas checkpoint"),
    (["train", "tiny.json", "--resume", "-o", "foreign"], "not a nas checkpoint"),
    (["train", "tiny.json", "--resume", "-o", "nowhere"], "no checkpoint in nowhere"),
    # unreadable images, empty folders
    (["search", "--space", "tiny", "--target-latency", "5ms", "--data", "missing"], "does not exist"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--data", "empty"], "no images found"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--data", "broken"], "cannot read image"),
    (["train", "tiny.json", "--data", "one-class"], "only one class (a)"),
    (["train", "tiny.json", "--data", "broken", "--resolution", "16"], "cannot read image"),
    (["baselines", "--models", "resnet18", "--data", "empty"], "no images found"),
    (["supernet", "train", "--space", "tiny", "--data", "missing"], "does not exist"),
    # bad storage URLs
    (["trials", "--storage", "not a url"], "not a database URL"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--storage", "not a url"], "not a database URL"),
    (["search", "--space", "tiny", "--target-latency", "5ms", "--storage", "sqlite:////no/such/folder/x.db"],
     "does not exist"),
    (["best", "--storage", "nosuchdb://x/y"], "nosuchdb"),
    (["trials", "--storage", "sqlite:///missing.db"], "no database at missing.db"),
    (["best", "--storage", "sqlite:///missing.db"], "no database at missing.db"),
    (["show", "0", "--storage", "sqlite:///missing.db"], "no database at missing.db"),
    (["report", "--storage", "sqlite:///missing.db"], "no database at missing.db"),
    (["dashboard", "--storage", "sqlite:///missing.db"], "no database at missing.db"),
    (["trials", "--storage", "sqlite:///empty"], "is a directory"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A folder with a real two-trial study (``nas.db``, study ``s``) and the bad files."""
    root = tmp_path_factory.mktemp("bad-inputs")
    config = SearchConfig(target_latency_ms=5.0, space="tiny", trials=2, study="s", proxy=ProxySettings(epochs=1))
    run_search(config, Store.open(f"sqlite:///{root / 'nas.db'}"), accuracy=WidthAccuracy(), latency=BlockLatency())
    write_architecture(Architecture("tiny-net", TINY, 32), root / "tiny.json")
    for name, text in BAD_FILES.items():
        (root / name).write_text(text)
    for name, data in BAD_BYTES.items():
        (root / name).write_bytes(data)
    (root / "foreign").mkdir()
    shutil.copy(root / "foreign.safetensors", root / "foreign" / "checkpoint.safetensors")
    (root / "empty").mkdir()
    for folder, names in (("one-class", ["a/1.png", "a/2.png"]), ("broken", ["a/1.png", "a/2.png", "b/1.png"])):
        for name in names:
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 12)).save(root / folder / name)
    shutil.copy(root / "image.png", root / "broken" / "b" / "bad.png")
    return root


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_gets_one_line_exit_2_and_changes_nothing(template, tmp_path, monkeypatch, capsys, args, message):
    work = tmp_path / "work"
    shutil.copytree(template, work)
    before = _snapshot(work)
    monkeypatch.chdir(work)
    code, stderr = run_nas(args, monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert message in lines[0] and "Traceback" not in stderr
    assert _snapshot(work) == before  # nas.db byte-for-byte, every file as it was, nothing new


def test_the_table_covers_every_command_and_60_inputs():
    commands = {args[0] for args, _ in CASES}
    assert len(CASES) >= 60
    assert commands >= {"search", "trials", "best", "show", "export", "train", "baselines", "scale", "latency",
                        "estimators", "supernet", "dashboard", "report"}
