"""The papers' networks: ShuffleNet V1 against the paper's table, and `nas baselines` storing runs."""

import pytest
import torch
from torch import nn

from nas.baselines import BASELINES, ShuffleNetV1, baseline_model, baseline_size
from nas.errors import UsageError
from nas.metrics import count_module_macs, count_params
from storage import Store, list_runs

from image_folders import write_image_folder

# ShuffleNet V1 (Zhang et al. 2017), Table 1, "Complexity" row: MFLOPs (multiply-adds) of 1x at 224 px
TABLE_1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}


@pytest.mark.parametrize("groups", sorted(TABLE_1_MFLOPS))
def test_shufflenet_v1_convolutions_have_the_papers_complexity(groups):
    model = ShuffleNetV1(groups)
    classifier_macs = model.classifier.in_features * model.classifier.out_features
    macs = count_module_macs(lambda: ShuffleNetV1(groups), 224)
    assert round((macs - classifier_macs) / 1e6) == TABLE_1_MFLOPS[groups]  # the table counts no classifier


def test_shufflenet_v1_g3_is_the_papers_140_mflops_1_9m_parameter_network():
    size = baseline_size("shufflenet_v1_g3")
    params, macs = size.params, size.macs
    assert (params, macs, size.resolution) == (1_865_728, 137_460_672, 224)  # "140 MFLOPs" (Table 2), 1.9M params (Megvii's release)
    assert round(params / 1e5) == 19 and abs(macs / 140e6 - 1) < 0.02
    model = ShuffleNetV1(3)
    shuffles = [m for m in model.modules() if isinstance(m, nn.ChannelShuffle)]
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and 1 < m.groups < m.in_channels]
    assert len(shuffles) == 16 and len(grouped) == 31  # every unit shuffles; stage 2's first 1x1 is not grouped
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert nn.ChannelShuffle(3)(x).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_every_baseline_is_a_1000_class_network_with_a_cost():
    for name in BASELINES:
        spec = baseline_model(name, 64)
        assert spec.description["baseline"] == name and spec.resolution == 64
    resnet = baseline_size("resnet18")
    assert resnet.params == count_params(baseline_model("resnet18").make(1000)) == 11_689_512 and resnet.macs > 1e9
    with pytest.raises(UsageError, match="known: resnet18, resnext26_32x4d, shufflenet_v1_g3"):
        baseline_model("shufflenet_v3")


@pytest.mark.slow
def test_cli_baselines_train_measure_and_store_shufflenets(nas_cli):
    data = write_image_folder(nas_cli.cwd / "data")
    rows = nas_cli.json("baselines", "--models", "shufflenet_v1_g3", "--models", "shufflenet_v2_x1_0", "--data", str(data),
                        "--epochs", "2", "--batch-size", "16", "--micro-batch", "8", "--resolution", "32",
                        "--latency-resolution", "64")
    assert [r["name"] for r in rows] == ["shufflenet_v1_g3", "shufflenet_v2_x1_0"]
    assert all(r["plan"]["steps_per_epoch"] == 2 and len(r["history"]) == 2 for r in rows)
    stored = list_runs(Store.open(f"sqlite:///{nas_cli.cwd / 'nas.db'}"), kind="baseline")
    assert [(r.id, r.name) for r in stored] == [(r["run"], r["name"]) for r in rows]
    v1, v2 = stored
    assert v1.architecture["source"] == "nas" and v2.architecture["source"] == "torchvision"
    from torchvision.models import shufflenet_v2_x1_0

    assert v1.params == 1_865_728 and v2.params == count_params(shufflenet_v2_x1_0())  # the 1000-class networks
    assert v1.macs == count_module_macs(lambda: ShuffleNetV1(3), 64) and v1.resolution == 64
    assert all(r.latency_ms is not None and r.latency_spread_ms is not None and r.device["resolution"] == 64 for r in stored)


def test_show_prints_a_baseline_that_is_no_block_network(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from nas.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["nas", "show", "shufflenet_v1_g3", "--json"])
    with pytest.raises(SystemExit) as exited:
        app()
    shown = json.loads(capsys.readouterr().out)
    assert exited.value.code == 0 and shown == {**shown, "params": 1_865_728, "macs": 137_460_672, "resolution": 224}
    assert not (tmp_path / "nas.db").exists()  # reading a paper network needs no database
