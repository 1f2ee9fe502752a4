"""The weight-sharing supernet: sliced sub-networks are timm networks, gradients stay in their slices,
training resumes exactly (also after SIGKILL), estimates repeat, and foreign checkpoints are refused."""

import os
import random
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from nas.architecture import Architecture
from nas.checkpoint import load_checkpoint, prefixed, read_state, save_checkpoint
from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.estimators.supernet import SupernetEstimator
from nas.estimators.choose import make_estimator, parse_spec
from nas.proxy import TuneSettings, channels_last, evaluate, proxy_genotype
from nas.recipe import TrainSettings
from nas.supernet import (
    Supernet,
    SupernetSettings,
    end_params,
    largest,
    random_genotype,
    smallest,
    train_supernet,
)
from nas.supernet.weights import weight_sets
from nas.train import architecture_model, initial_weights, train
from search_spaces import build_model, get_space

from conftest import wait_for

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

TINY = get_space("tiny")
# tiny has one width and one expansion; this variant also slices channels (width 0.5 and mb1 vs mb3)
TINY_WIDTHS = replace(TINY, name="tiny-widths", ops=("ds", "mb1", "mb3"), widths=(0.5, 1.0))
# and this one mixes fused MBConv (timm's edge residual, a weight set of its own) with MBConv
TINY_FUSED = replace(TINY, name="tiny-fused", ops=("ds", "mb3", "fmb1", "fmb4"))
RESOLUTION = 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    """40 random 12x12 RGB images in 4 classes: 32 training images, 4 steps of 8 per epoch."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for index in range(40):
        path = root / f"class{index % 4}" / f"{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(path)
    return str(root)


def _settings(folder: str, **changes) -> SupernetSettings:
    return SupernetSettings(**{"space": "tiny", "data": folder, "resolution": RESOLUTION, "epochs": 3,
                               "batch_size": 8, "save_every": 3, **changes})


@pytest.fixture(scope="module")
def finished(folder, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("supernet") / "tiny.safetensors"
    train_supernet(_settings(folder, epochs=1), path)
    return path


def _genotypes(space, count: int = 3):
    rng = random.Random(0)
    return [largest(space), smallest(space), *(random_genotype(space, rng) for _ in range(count))]


@pytest.mark.parametrize("space", [TINY, TINY_WIDTHS, TINY_FUSED], ids=lambda s: s.name)
def test_a_sub_network_on_sliced_weights_equals_timm_loaded_with_them(space):
    torch.manual_seed(0)
    supernet = Supernet(space, num_classes=10, in_chans=1, resolution=RESOLUTION)
    data = load_proxy_data("digits", RESOLUTION)
    x, calibration = data.x_val[:32], [data.x_train[:64]]
    for genotype in _genotypes(space):
        weights = supernet.weights(genotype)
        for name, (source, _) in supernet.subnet(genotype).sources.items():  # views, not copies
            assert weights[name].untyped_storage().data_ptr() == supernet.params[source].untyped_storage().data_ptr()
        buffers = supernet.calibrate(genotype, calibration)
        reference = build_model(proxy_genotype(genotype, RESOLUTION), num_classes=10, in_chans=1)
        reference.load_state_dict(supernet.state_dict(genotype, buffers))  # strict: every tensor, exact shapes
        with torch.no_grad():
            reference.eval()
            assert (supernet.forward(genotype, x, train=False, buffers=buffers) - reference(x)).abs().max() <= 1e-5
            reference.train()
            assert (supernet.forward(genotype, x, train=True) - reference(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("space", [TINY, TINY_WIDTHS, TINY_FUSED], ids=lambda s: s.name)
def test_gradients_of_a_sub_network_reach_only_the_slices_it_used(space):
    supernet = Supernet(space, num_classes=10, in_chans=1, resolution=RESOLUTION)
    x = load_proxy_data("digits", RESOLUTION).x_train[:16]
    sliced = left_out = 0
    for genotype in _genotypes(space, 6):
        for param in supernet.params.values():
            param.grad = None
        supernet.forward(genotype, x, train=True).logsumexp(1).mean().backward()
        used = {}
        for source, index in supernet.subnet(genotype).sources.values():
            used.setdefault(source, torch.zeros_like(supernet.params[source], dtype=torch.bool))[index] = True
        sliced += sum(int(mask.sum() < mask.numel()) for mask in used.values())
        left_out += sum(name not in used for name in supernet.params)
        for name, param in supernet.params.items():
            if name not in used:
                assert param.grad is None, name
            else:
                assert not param.grad[~used[name]].any(), name
        assert sum(int(p.grad.count_nonzero()) for p in supernet.params.values() if p.grad is not None) > 0
    assert sliced and left_out  # the networks did use parts of tensors, and left weight sets out


def test_only_the_shared_space_is_one_nested_weight_set():
    """``mbconv-shared`` drops the choices that keep weights of their own; the fused space keeps two sets."""
    assert list(weight_sets(get_space("mbconv-shared"))) == ["ir"]
    assert list(weight_sets(get_space("mbconv-fused"))) == ["ir", "er"]


def test_a_network_outside_the_space_is_not_held_even_where_its_shapes_fit():
    """A ``ds`` block fits the MBConv weights after their expansion; a space without ``ds`` never
    trained them that way, so its supernet must not estimate such a network."""
    mbconv_only = replace(TINY, name="tiny-mbconv", ops=("mb3",))
    supernet = Supernet(mbconv_only, num_classes=4, in_chans=3, resolution=RESOLUTION)
    inside = largest(mbconv_only)
    first = inside.stages[0][0]
    with_ds = replace(inside, stages=((first.with_(type="ds", exp_ratio=None),), *inside.stages[1:]))
    assert supernet.holds(inside)
    assert not supernet.holds(with_ds)
    assert Supernet(TINY, num_classes=4, in_chans=3, resolution=RESOLUTION).holds(with_ds)
    with pytest.raises(UsageError, match="is not a network of the tiny-mbconv space"):
        supernet.forward(with_ds, torch.zeros(2, 3, RESOLUTION, RESOLUTION), train=False)


def test_the_sandwich_ends_are_the_largest_and_smallest_networks():
    space = get_space("mbconv")
    big, small = largest(space), smallest(space)
    assert [b.type for s in big.stages for b in s] == ["ir"] * 7
    assert all(b.exp_ratio == 6.0 and b.kernel == 5 and b.se_ratio == 0.25 for s in big.stages for b in s)
    assert [b.type for s in small.stages for b in s] == ["ds"] * 7
    assert all(b.kernel == 3 and b.se_ratio is None for s in small.stages for b in s)
    repeats = [r for r, _, _ in space.skeleton]
    assert big.depth == sum(r + 1 for r in repeats) and small.depth == sum(max(r - 1, 1) for r in repeats)
    assert all(sb.out_chs > ss.out_chs for sb, ss in zip((s[0] for s in big.stages), (s[0] for s in small.stages), strict=True))


@pytest.mark.parametrize("end, network", [("largest", largest), ("smallest", smallest)])
def test_an_end_s_parameters_sample_that_end(end, network):
    space = get_space("mbconv")
    params = end_params(space, end)
    assert space.sample(optuna.trial.FixedTrial(params)) == network(space)
    assert params.keys() == {f"s{i}_{c}" for i in range(len(space.skeleton)) for c in space.choices(i)}


class _StopAt:
    """Raises KeyboardInterrupt after ``step`` (records where a run started)."""

    def __init__(self, step: int | None) -> None:
        self.at, self.resumed_step, self.steps = step, None, []

    def started(self, steps, steps_per_epoch, resumed_step) -> None:
        self.resumed_step = resumed_step

    def step(self, step, loss) -> None:
        self.steps.append(step)
        if step == self.at:
            raise KeyboardInterrupt

    def epoch_done(self, record) -> None: ...


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(folder, tmp_path):
    settings = _settings(folder)  # 3 epochs of 4 steps; saved at steps 3, 4, 6, 8, 9 and 12
    whole = train_supernet(settings, tmp_path / "whole.safetensors")
    with pytest.raises(KeyboardInterrupt):
        train_supernet(settings, tmp_path / "cut.safetensors", observer=_StopAt(7))
    assert read_state(tmp_path / "cut.safetensors")["step"] == 6
    observer = _StopAt(None)
    resumed = train_supernet(settings, tmp_path / "cut.safetensors", resume=True, observer=observer)
    assert observer.resumed_step == 6 and observer.steps == list(range(7, 13))
    a, b = load_file(whole.path), load_file(resumed.path)
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert resumed.history == whole.history and len(whole.history) == 3
    curve = read_state(whole.path)["history"]
    assert [r["epoch"] for r in curve] == [1, 2, 3] and all(0 <= r["largest_accuracy"] <= 1 for r in curve)
    with pytest.raises(UsageError, match="has finished all 3 epochs"):
        train_supernet(settings, whole.path, resume=True)
    with pytest.raises(UsageError, match="already exists; pass --resume"):
        train_supernet(settings, whole.path)


class _Losses:
    def __init__(self) -> None:
        self.losses = []

    def started(self, steps, steps_per_epoch, resumed_step) -> None: ...

    def step(self, step, loss) -> None:
        self.losses.append(loss)

    def epoch_done(self, record) -> None: ...


def test_training_starts_from_a_classifier_that_favours_no_class(folder, tmp_path):
    """timm initialises the last layer for 1,000 classes; a supernet's starts at zero, so the first
    loss is exactly ln(classes) (4 here) and the later ones leave it."""
    observer = _Losses()
    train_supernet(_settings(folder, epochs=1), tmp_path / "s.safetensors", observer=observer)
    assert observer.losses[0] == pytest.approx(np.log(4), abs=1e-5)
    assert observer.losses[-1] != pytest.approx(np.log(4), abs=1e-3)
    supernet = Supernet(TINY, num_classes=4, in_chans=3, resolution=RESOLUTION)
    assert supernet.classifier == {"classifier.weight", "classifier.bias"}
    assert supernet.params["classifier.weight"].abs().sum() > 0  # timm's start: zeroed by training only


def test_a_run_killed_with_sigkill_resumes_from_its_last_saved_step(folder, tmp_path, spawn):
    command = [sys.executable, "-c", "import nas.cli.supernet; from nas.cli.common import app; app()",
               "supernet", "train", "--space", "tiny", "--data", folder, "--resolution", str(RESOLUTION),
               "--epochs", "500", "--batch-size", "8", "--save-every", "2", "--json"]
    proc = spawn(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    path = tmp_path / "supernets" / "tiny.safetensors"
    try:
        wait_for(lambda: proc.poll() is not None or (path.exists() and read_state(path)["step"] >= 6), timeout=300)
        assert proc.poll() is None, proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    saved = read_state(path)["step"]
    tensors, state = load_checkpoint(path)  # whole, whatever the kill interrupted
    assert saved >= 6 and state["epoch"] == saved // 4 and any(k.startswith("supernet.") for k in tensors)
    observer = _StopAt(saved + 1)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(_settings(folder, epochs=500, save_every=2), path, resume=True, observer=observer)
    assert observer.resumed_step == saved and observer.steps == [saved + 1]


def test_the_estimator_returns_the_same_accuracy_twice(finished, folder):
    estimator = SupernetEstimator(finished, space="tiny", data=folder)
    reports = []
    first, other = _genotypes(TINY, 2)[2:]
    accuracy = estimator.accuracy(first, lambda step, value: reports.append(value))
    estimator.accuracy(other, reports.append)
    assert estimator.accuracy(first, reports.append) == accuracy and 0 <= accuracy <= 1 and reports == []
    again = SupernetEstimator(finished)
    assert again.accuracy(first, reports.append) == accuracy
    assert again.settings == estimator.settings and estimator.name == "supernet"
    assert estimator.settings["space"] == "tiny" and len(estimator.settings["sha256"]) == 64
    other_draw = SupernetEstimator(finished, seed=1)  # the seed draws the calibration images: its noise
    assert other_draw.settings["calibration_seed"] == 1 and estimator.settings["calibration_seed"] == 0
    assert not torch.equal(torch.cat(other_draw.calibration), torch.cat(estimator.calibration))
    assert all(torch.equal(a, b) for a, b in zip(SupernetEstimator(finished, seed=1).calibration, other_draw.calibration,
                                                  strict=True))


def test_fine_tuning_starts_from_the_inherited_weights_and_repeats(finished):
    """``supernet:steps=N``: zero steps score timm's network holding exactly its inherited weights
    (the slices themselves are checked against timm above); N steps train on from there, the same
    for the same seed."""
    genotype = _genotypes(TINY, 1)[2]
    untrained = SupernetEstimator(finished, tune=TuneSettings(0, 3e-3, batch_size=8))
    network = build_model(proxy_genotype(genotype, RESOLUTION), num_classes=4, in_chans=3)
    network.load_state_dict(untrained.inherited_weights(genotype))
    data = untrained.data
    assert untrained.accuracy(genotype, print) == evaluate(channels_last(network), data.x_val, data.y_val)
    tuned = SupernetEstimator(finished, tune=TuneSettings(3, 3e-3, batch_size=8))
    accuracy = tuned.accuracy(genotype, print)
    assert tuned.accuracy(genotype, print) == accuracy and 0 <= accuracy <= 1
    assert tuned.settings["tune"]["steps"] == 3 and SupernetEstimator(finished).settings["tune"] is None
    with pytest.raises(UsageError, match="batch_size 64 is more than .* 32 training images"):
        SupernetEstimator(finished, tune=TuneSettings(3, 3e-3, batch_size=64)).accuracy(genotype, print)


def test_the_fine_tune_is_spelled_in_the_estimator_name(finished, folder, tmp_path, monkeypatch):
    assert parse_spec("supernet:big,steps=20") == ("supernet", {"name": "big", "steps": "20"})
    assert parse_spec("supernet:steps=20,lr=0.01") == ("supernet", {"steps": "20", "lr": "0.01"})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "supernets").mkdir()
    (tmp_path / "supernets" / "tiny.safetensors").symlink_to(finished)
    tuned = make_estimator("supernet:steps=5,batch_size=8", data=folder, seed=2, space="tiny")
    assert tuned.tune == TuneSettings(5, 3e-3, batch_size=8, seed=2) and tuned.settings["calibration_seed"] == 2
    assert make_estimator("supernet:tiny,steps=0", data=folder, space="tiny").tune is None  # 0 steps: the read-off
    for spec, message in (("supernet:lr=0.1", "give steps=N"), ("supernet:steps=2,epochs=1", "unknown option 'epochs'"),
                          ("supernet:steps=-1", "steps must be >= 0"), ("supernet:steps=2,lr=0", "lr must be > 0"),
                          ("supernet:other,steps=2", "no supernet at supernets/other.safetensors")):
        with pytest.raises(UsageError, match=message):
            make_estimator(spec, data=folder, space="tiny")


def test_inherited_weights_load_into_the_real_network(finished):
    estimator = SupernetEstimator(finished)
    genotype = _genotypes(TINY, 1)[2]
    network = build_model(genotype, num_classes=4, in_chans=3)  # stride 32 and RGB: strides own no weights
    network.load_state_dict(estimator.inherited_weights(genotype, in_chans=3))


def test_a_supernet_of_another_space_or_data_is_refused(finished, folder, tmp_path):
    with pytest.raises(UsageError, match="is a supernet of space 'tiny', not 'mbconv'"):
        SupernetEstimator(finished, space="mbconv")
    with pytest.raises(UsageError, match="is a supernet of space 'tiny', not 'mbconv'"):
        train_supernet(_settings(folder, space="mbconv"), finished, resume=True)
    with pytest.raises(UsageError, match="is a supernet trained on .*, not 'digits'"):
        SupernetEstimator(finished, data="digits")
    with pytest.raises(UsageError, match="is a supernet trained on .*, not 'digits'"):
        train_supernet(_settings(folder, data="digits"), finished, resume=True)
    with pytest.raises(UsageError, match="was trained with lr=0.003, this run has 0.01"):
        train_supernet(_settings(folder, epochs=1, lr=1e-2), finished, resume=True)
    wider = replace(smallest(TINY), stages=tuple((s[0].with_(out_chs=64),) for s in smallest(TINY).stages))
    with pytest.raises(UsageError, match="is not a network of the tiny space"):
        SupernetEstimator(finished).accuracy(wider, print)
    other = tmp_path / "checkpoint.safetensors"
    save_checkpoint(other, {"w": torch.zeros(2)}, {"epoch": 1})  # a `nas train` checkpoint
    with pytest.raises(UsageError, match="is not a supernet checkpoint"):
        SupernetEstimator(other)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(_settings(folder), tmp_path / "unfinished.safetensors", observer=_StopAt(5))
    with pytest.raises(UsageError, match=r"is still training \(step 4 of 12\)"):
        SupernetEstimator(tmp_path / "unfinished.safetensors")
    with pytest.raises(UsageError, match="--space: unknown space 'nope'"):
        SupernetSettings(space="nope")


def test_a_search_with_the_supernet_estimator_stores_the_contract(finished, folder, tmp_path, monkeypatch):
    """`nas search --estimator supernet` finds `supernets/tiny.safetensors` and stores every trial
    with `estimator: supernet` (latency from a deterministic device: no timing here)."""
    from fakes import BlockLatency

    from nas import SearchConfig, run_search
    from storage import Store, StudyRecord, TrialRecord

    monkeypatch.chdir(tmp_path)
    (tmp_path / "supernets").mkdir()
    (tmp_path / "supernets" / "tiny.safetensors").symlink_to(finished)
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    config = SearchConfig(target_latency_ms=5.0, space="tiny", trials=4, estimator="supernet", data=folder)
    result = run_search(config, store, latency=BlockLatency())
    assert result.counts == {"COMPLETE": 4}
    study = optuna.load_study(study_name=result.study_name, storage=store.optuna())
    records = [TrialRecord.from_trial(t) for t in study.trials]
    assert all(r.estimator == "supernet" and 0 <= r.accuracy <= 1 and r.arch_def and r.latency_ms for r in records)
    assert StudyRecord.from_study(study).estimator["sha256"] == SupernetEstimator(finished).settings["sha256"]


def test_nas_train_starts_a_network_from_its_supernet_weights(finished, folder, tmp_path, monkeypatch):
    """`nas train ARCH --init supernet[:NAME]` (Once-for-All's fine-tuning of a found sub-network):
    the network starts from its inherited, calibrated slices (a negligible learning rate leaves the
    trained weights on them); what a supernet cannot initialise is refused in one line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "supernets").mkdir()
    (tmp_path / "supernets" / "tiny.safetensors").symlink_to(finished)
    genotype = _genotypes(TINY, 1)[2]
    spec = architecture_model(Architecture("tiny-found", genotype))
    inherited = SupernetEstimator(finished).inherited_weights(genotype, in_chans=3)
    for init in ("supernet", "supernet:tiny", str(finished)):
        weights = initial_weights(init, spec)
        assert weights.keys() == inherited.keys() and all(torch.equal(weights[k], inherited[k]) for k in weights)
    settings = TrainSettings(data=folder, epochs=1, resolution=RESOLUTION, batch_size=8, lr=1e-12, ema_decay=None,
                             init="supernet")
    trained = prefixed(load_file(train(spec, settings, tmp_path / "run").checkpoint), "model")
    parameters = [name for name, _ in build_model(genotype, num_classes=4).named_parameters()]
    assert parameters and all(torch.allclose(trained[name], inherited[name], atol=1e-6) for name in parameters)
    outside = replace(smallest(TINY), stages=tuple((s[0].with_(out_chs=64),) for s in smallest(TINY).stages))
    refusals = ((spec, "supernet:other", "no such checkpoint"),
                (architecture_model(Architecture("wide", outside)), "supernet", "not a network of the 'tiny' space"),
                (architecture_model(Architecture("gn", genotype), norm="gn-ws"), "supernet", "with --norm bn"))
    for model_spec, init, message in refusals:
        with pytest.raises(UsageError, match=message):
            initial_weights(init, model_spec)
    (tmp_path / "supernets" / "second.safetensors").symlink_to(finished)
    with pytest.raises(UsageError, match=r"2 supernets in supernets/; name one with supernet:NAME \(second, tiny\)"):
        initial_weights("supernet", spec)
