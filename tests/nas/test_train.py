"""Training: gradient accumulation equals a full batch, exact resume, atomic checkpoints under
SIGKILL, GroupNorm + WS, the CLI and its errors."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2

from nas.architecture import Architecture, write_architecture
from nas.checkpoint import load_checkpoint, read_state
from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.recipe import FINE_TUNE_LR, SCRATCH_LR, TrainSettings, bit_hyperrule, make_plan
from nas.train import accumulate_gradient, architecture_model, make_scheduler, train
from search_spaces import Genotype
from storage import Store, list_runs

from conftest import wait_for
from image_folders import write_image_folder
from inprocess import run_nas

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16_se0.25"], ["ir_r1_k3_s2_e3_c24_nhs"]],
                              stem_size=8, num_features=64)
ARCH = Architecture("tiny-net", TINY, 32)


@pytest.fixture()
def small_folder(tmp_path) -> str:
    return str(write_image_folder(tmp_path / "data"))


def test_bit_hyperrule():
    assert bit_hyperrule(1_437, 8) == bit_hyperrule(19_999, 95)
    small = bit_hyperrule(1_437, 8)
    assert (small.steps, small.warmup_steps, small.resolution, small.precrop, small.mixup) == (500, 100, 128, 160, 0.0)
    medium = bit_hyperrule(50_000, 224)
    assert (medium.steps, medium.resolution, medium.precrop, medium.mixup) == (10_000, 384, 448, 0.1)
    assert bit_hyperrule(1_281_167, 400).steps == 20_000


def test_from_scratch_trains_on_a_cosine_and_fine_tuning_on_bit_steps():
    scratch, _ = make_plan(TrainSettings(epochs=10, resolution=16), total_stride=16)
    assert (scratch.sched, scratch.lr, scratch.warmup_steps) == ("cosine", SCRATCH_LR, round(0.05 * scratch.steps))
    tuned, _ = make_plan(TrainSettings(epochs=10, resolution=16, init="runs/any"), total_stride=16)
    assert (tuned.sched, tuned.lr, tuned.warmup_steps) == ("step", FINE_TUNE_LR, round(0.2 * tuned.steps))
    chosen, _ = make_plan(TrainSettings(epochs=10, resolution=16, sched="step", lr=0.05), total_stride=16)
    assert (chosen.sched, chosen.lr) == ("step", 0.05)
    with pytest.raises(UsageError, match="--sched: unknown 'linear'"):
        TrainSettings(sched="linear")


@pytest.mark.parametrize("sched", ["cosine", "step"])
def test_each_schedule_warms_up_to_the_peak_and_ends_far_below_it(sched):
    plan, _ = make_plan(TrainSettings(epochs=10, resolution=16, sched=sched), total_stride=16)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=plan.lr)
    scheduler = make_scheduler(optimizer, plan)
    rates = []
    for step in range(plan.steps + 1):
        scheduler.step_update(step)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[0] == 0.0 and rates[plan.warmup_steps] == pytest.approx(plan.lr, rel=0.02)  # the cosine started with it
    assert max(rates) <= plan.lr and rates[-1] < plan.lr / 100
    if sched == "step":  # BiT: a tenth of the peak from 30% of the steps on
        assert rates[round(0.35 * plan.steps)] == pytest.approx(plan.lr / 10)
    else:
        assert rates[round(0.35 * plan.steps)] > plan.lr / 2


def _digits_batch(size: int, resolution: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_proxy_data("digits", resolution)
    return data.x_train[:size].expand(-1, 3, -1, -1).contiguous(), data.y_train[:size]


def _one_step(norm: str, micro_batch: int, mixup: bool) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Gradients and weights after one BiT optimizer step (SGD, momentum 0.9, lr 0.003) on 512 fixed images."""
    torch.manual_seed(0)
    model = architecture_model(ARCH, norm).make(10).train()
    optimizer = create_optimizer_v2(model, "momentum", lr=0.003, weight_decay=0.0)
    x, target = _digits_batch(512)
    loss_fn = F.cross_entropy
    if mixup:
        np.random.seed(1)  # timm's Mixup draws its lambda from numpy's global generator
        x, target = Mixup(mixup_alpha=0.1, num_classes=10)(x, target)
        loss_fn = SoftTargetCrossEntropy()
    optimizer.zero_grad(set_to_none=True)
    accumulate_gradient(model, x, target, micro_batch, loss_fn)
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    optimizer.step()
    return grads, {name: p.detach().clone() for name, p in model.named_parameters()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("mixup", [False, True], ids=["labels", "mixup"])
def test_an_accumulated_step_equals_a_full_batch_step_with_group_norm(mixup):
    grads, weights = _one_step("gn-ws", 512, mixup)
    accumulated_grads, accumulated_weights = _one_step("gn-ws", 64, mixup)  # 8 micro-batches of 64
    assert _max_diff(grads, accumulated_grads) <= 1e-5
    assert _max_diff(weights, accumulated_weights) <= 1e-5
    assert max(float(g.abs().max()) for g in grads.values()) > 1e-3  # a real gradient, not zeros


def test_batch_norm_sees_each_micro_batch_alone():
    """Why --norm gn-ws: BatchNorm's statistics are per micro-batch, so accumulation changes the gradient."""
    assert _max_diff(_one_step("bn", 512, False)[0], _one_step("bn", 64, False)[0]) > 1e-3


def test_a_group_norm_network_learns_a_fixed_batch():
    model = architecture_model(ARCH, "gn-ws").make(10)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"GroupNormAct", "StdConv2d"} <= kinds and "BatchNormAct2d" not in kinds
    assert not any("running_mean" in k for k in model.state_dict())  # no BatchNorm left
    torch.manual_seed(0)
    model = architecture_model(ARCH, "gn-ws").make(10).train()
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-2, weight_decay=0.0)
    x, target = _digits_batch(64)
    losses = []
    for _ in range(10):
        optimizer.zero_grad(set_to_none=True)
        losses.append(accumulate_gradient(model, x, target, 16, F.cross_entropy))
        optimizer.step()
    assert losses[-1] < losses[0], losses


class _StopAfter:
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def started(self, plan, resumed_epoch) -> None: ...

    def step(self, epoch, step_in_epoch) -> None: ...

    def epoch_done(self, record) -> None:
        if record.epoch == self.epochs:
            raise KeyboardInterrupt


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path, small_folder):
    # MixUp, EMA, crops and accumulation (2 micro-batches per step) all in play
    recipe = dict(data=small_folder, epochs=3, resolution=16, mixup=0.4, ema_decay=0.9, batch_size=8, micro_batch=4)
    settings = TrainSettings(**recipe)
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
    assert (whole.plan.steps_per_epoch, whole.plan.accumulation, whole.plan.precrop) == (4, 2, 20)
    with pytest.raises(UsageError, match="was trained with seed=0, this run has 1"):
        train(spec, TrainSettings(**recipe, seed=1), tmp_path / "cut", resume=True)


_WRITER = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from nas.checkpoint import save_checkpoint
    path = Path(sys.argv[1])
    for version in range(10**6):
        save_checkpoint(path, {"w": torch.full((4_000_000,), float(version))}, {"epoch": version})
        print(version, flush=True)
""")


def test_a_checkpoint_survives_sigkill_during_a_write(tmp_path, spawn):
    path = tmp_path / "checkpoint.safetensors"
    proc = spawn([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "0"  # one whole checkpoint exists
        wait_for(lambda: any(p.name.endswith(".tmp") for p in tmp_path.iterdir()), timeout=60, interval=0.001)
        os.kill(proc.pid, signal.SIGKILL)  # while the next version is being written
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    tensors, state = load_checkpoint(path)
    assert tensors["w"].shape == (4_000_000,) and torch.all(tensors["w"] == state["epoch"])


@pytest.mark.slow
def test_cli_train_accumulates_bits_batch_stores_the_run_and_the_checkpoint_exports(nas_cli):
    arch_file = write_architecture(ARCH, nas_cli.cwd / "tiny.json")
    args = ["train", str(arch_file), "--epochs", "1", "--resolution", "16", "--batch-size", "512", "--norm", "gn-ws",
            "-o", "run"]
    result = nas_cli.json(*args)
    plan = result["plan"]
    assert (plan["epochs"], plan["batch_size"], plan["micro_batch"], plan["steps_per_epoch"]) == (1, 512, 64, 2)
    checkpoint = str(nas_cli.cwd / "run" / "checkpoint.safetensors")
    assert result["checkpoint"] == checkpoint and result["resolution"] == 32
    [run] = list_runs(Store.open(f"sqlite:///{nas_cli.cwd / 'nas.db'}"), kind="train")
    assert (run.id, run.name, run.resolution, run.checkpoint) == (result["run"], "tiny-net", 32, checkpoint)
    assert run.accuracy == result["accuracy"] and run.latency_ms is not None and run.macs > 0 and run.params > 0
    assert run.settings["norm"] == "gn-ws" and run.settings["plan"] == plan
    exported = nas_cli.json("export", "run", "--format", "timm", "-o", "trained")
    assert exported["trained"] and exported["num_classes"] == 10
    again = nas_cli(*args, check=False)
    assert again.returncode == 2 and "pass --resume" in again.stderr


@pytest.mark.parametrize("args, message", [
    (["--data", "one-class"], "only one class (a)"),
    (["--data", "broken", "--resolution", "16"], "cannot read image"),
    (["--data", "broken"], "broken/b/bad.png"),
    (["--resolution", "20"], "not divisible by the network's total stride 8; use 16 or 24"),
    (["--resume", "-o", "foreign"], "not a nas checkpoint"),
    (["--resume", "-o", "nowhere"], "no checkpoint in nowhere"),
    (["--norm", "ln"], "choose one of bn, gn-ws"),
    (["--epochs", "many"], "--epochs must be 'auto' or a number"),
    (["--micro-batch", "0"], "--micro-batch must be >= 1"),
])
def test_bad_training_input_gets_one_line(tmp_path, monkeypatch, capsys, args, message):
    from PIL import Image

    write_architecture(ARCH, tmp_path / "tiny.json")
    for folder, names in (("one-class", ["a/1.png", "a/2.png"]), ("broken", ["a/1.png", "a/2.png", "b/1.png"])):
        for name in names:
            (tmp_path / folder / name).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 12)).save(tmp_path / folder / name)
    (tmp_path / "broken" / "b" / "bad.png").write_bytes(b"not an image")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "checkpoint.safetensors").write_bytes(b"PK\x03\x04 a zip, not ours")
    monkeypatch.chdir(tmp_path)
    code, stderr = run_nas(["train", "tiny.json", "--epochs", "1", *args], monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
