"""Training: exact resume, atomic checkpoints under SIGKILL, GroupNorm + WS, the CLI and its errors."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from nas.architecture import Architecture, write_architecture
from nas.checkpoint import load_checkpoint, read_state
from nas.errors import UsageError
from nas.latency import LatencySettings
from nas.train import TrainSettings, architecture_model, bit_hyperrule, train
from search_spaces import Genotype
from storage import list_runs

from conftest import wait_for

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16_se0.25"], ["ir_r1_k3_s2_e3_c24_nhs"]],
                              stem_size=8, num_features=64)
ARCH = Architecture("tiny-net", TINY, 32)
FAST = dict(resolution=16, latency=LatencySettings(resolution=32, warmup=1, repeats=3))


def test_bit_hyperrule():
    assert bit_hyperrule(1_437, 8) == bit_hyperrule(19_999, 95)
    small = bit_hyperrule(1_437, 8)
    assert (small.steps, small.warmup_steps, small.resolution, small.precrop, small.mixup) == (500, 100, 128, 160, 0.0)
    medium = bit_hyperrule(50_000, 224)
    assert (medium.steps, medium.resolution, medium.precrop, medium.mixup) == (10_000, 384, 448, 0.1)
    assert bit_hyperrule(1_281_167, 400).steps == 20_000


class _StopAfter:
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def started(self, plan, resumed_epoch) -> None: ...

    def step(self, epoch, step_in_epoch) -> None: ...

    def epoch_done(self, record) -> None:
        if record.epoch == self.epochs:
            raise KeyboardInterrupt


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path):
    settings = TrainSettings(epochs=3, mixup=0.4, ema_decay=0.9, **FAST)  # MixUp, EMA, crops all in play
    spec = architecture_model(ARCH)
    whole = train(spec, settings, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(spec, settings, tmp_path / "cut", observer=_StopAfter(1))
    assert read_state(tmp_path / "cut" / "checkpoint.safetensors")["epoch"] == 1
    resumed = train(spec, settings, tmp_path / "cut", resume=True)
    a, b = load_file(whole.checkpoint), load_file(resumed.checkpoint)
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a) and any(k.startswith("optim.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert resumed.history == whole.history and len(whole.history) == 3
    with pytest.raises(UsageError, match="was trained with seed=0, this run has 1"):
        train(spec, TrainSettings(epochs=3, mixup=0.4, ema_decay=0.9, seed=1, **FAST), tmp_path / "cut", resume=True)


_WRITER = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from nas.checkpoint import save_checkpoint
    path = Path(sys.argv[1])
    for version in range(10**6):
        save_checkpoint(path, {"w": torch.full((4_000_000,), float(version))}, {"epoch": version})
        print(version, flush=True)
""")


def test_a_checkpoint_survives_sigkill_during_a_write(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "0"  # one whole checkpoint exists
        wait_for(lambda: any(p.name.endswith(".tmp") for p in tmp_path.iterdir()), timeout=60, interval=0.001)
        os.kill(proc.pid, signal.SIGKILL)  # while the next version is being written
    finally:
        proc.kill()
        proc.wait()
    tensors, state = load_checkpoint(path)
    assert tensors["w"].shape == (4_000_000,) and torch.all(tensors["w"] == state["epoch"])


def test_gn_ws_network_trains_on_builtin_data(tmp_path):
    settings = TrainSettings(epochs=4, norm="gn-ws", lr=1e-2, ema_decay=None, **FAST)
    result = train(architecture_model(ARCH, "gn-ws"), settings, tmp_path / "run")
    losses = [r.loss for r in result.history]
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0] * 0.9, losses
    assert result.accuracy > 0.25  # 10 classes: chance is 0.1
    keys = load_file(result.checkpoint)
    assert not any("running_mean" in k for k in keys)  # no BatchNorm left
    model = architecture_model(ARCH, "gn-ws").make(10)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"GroupNormAct", "StdConv2d"} <= kinds and "BatchNormAct2d" not in kinds


def test_cli_train_stores_the_run_and_the_checkpoint_exports(nas_cli):
    arch_file = write_architecture(ARCH, nas_cli.cwd / "tiny.json")
    args = ["train", str(arch_file), "--epochs", "1", "--resolution", "16", "-o", "run"]
    result = nas_cli.json(*args)
    assert result["checkpoint"] == "run/checkpoint.safetensors" and result["plan"]["epochs"] == 1
    runs = list_runs(f"sqlite:///{nas_cli.cwd / 'nas.db'}", kind="train")
    assert len(runs) == 1 and runs[0]["name"] == "tiny-net" and runs[0]["resolution"] == 32
    assert runs[0]["checkpoint"] == str(nas_cli.cwd / "run" / "checkpoint.safetensors")
    assert runs[0]["accuracy"] == result["accuracy"] and runs[0]["latency_ms"] > 0 and runs[0]["macs"] > 0
    exported = nas_cli.json("export", "run", "--format", "timm", "-o", "trained")
    assert exported["trained"] and exported["num_classes"] == 10
    again = nas_cli(*args, check=False)
    assert again.returncode == 2 and "pass --resume" in again.stderr


def test_cli_baselines_store_runs(nas_cli):
    rows = nas_cli.json("baselines", "--models", "shufflenet_v2_x1_0", "--epochs", "1", "--resolution", "32",
                        "--latency-resolution", "64")
    assert [r["name"] for r in rows] == ["shufflenet_v2_x1_0"]
    stored = list_runs(f"sqlite:///{nas_cli.cwd / 'nas.db'}", kind="baseline")
    assert stored[0]["architecture"]["source"] == "torchvision" and stored[0]["resolution"] == 64
    from torchvision.models import shufflenet_v2_x1_0

    assert stored[0]["params"] == sum(p.numel() for p in shufflenet_v2_x1_0().parameters())  # the 1000-class network
    assert stored[0]["latency_ms"] > 0 and stored[0]["macs"] > 0


@pytest.mark.parametrize("args, message", [
    (["--data", "one-class"], "only one class (a)"),
    (["--data", "broken", "--resolution", "16"], "cannot read image"),
    (["--data", "broken"], "broken/b/bad.png"),
    (["--resolution", "20"], "not divisible by the network's total stride 8; use 16 or 24"),
    (["--resume", "-o", "foreign"], "not a nas checkpoint"),
    (["--resume", "-o", "nowhere"], "no checkpoint in nowhere"),
    (["--norm", "ln"], "choose one of bn, gn-ws"),
    (["--epochs", "many"], "--epochs must be 'auto' or a number"),
])
def test_bad_training_input_gets_one_line(nas_cli, args, message):
    from PIL import Image

    write_architecture(ARCH, nas_cli.cwd / "tiny.json")
    for folder, names in (("one-class", ["a/1.png", "a/2.png"]), ("broken", ["a/1.png", "a/2.png", "b/1.png"])):
        for name in names:
            (nas_cli.cwd / folder / name).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 12)).save(nas_cli.cwd / folder / name)
    (nas_cli.cwd / "broken" / "b" / "bad.png").write_bytes(b"not an image")
    (nas_cli.cwd / "foreign").mkdir()
    (nas_cli.cwd / "foreign" / "checkpoint.safetensors").write_bytes(b"PK\x03\x04 a zip, not ours")
    proc = nas_cli("train", "tiny.json", "--epochs", "1", *args, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
