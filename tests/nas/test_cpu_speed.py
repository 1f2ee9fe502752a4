"""What makes a training step fast on a CPU changes nothing a network computes: the fused AdamW
steps as timm's AdamW did, and a depthwise layer padded explicitly gives the same outputs and
gradients; real `tiny` networks on digits."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2

from nas.cpu_speed import adamw, channels_last, pad_small_maps
from nas.data import load_proxy_data
from nas.proxy import ProxySettings
from search_spaces import build_model
from small_maps import NETWORK, RESOLUTION

DATA = load_proxy_data("digits", RESOLUTION)

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest's


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return channels_last(build_model(NETWORK, num_classes=DATA.num_classes, in_chans=DATA.in_chans)).train()


def test_the_fused_optimizer_takes_the_steps_timm_s_adamw_takes():
    """Same decay groups (none on BatchNorm and biases) and the same update, from the same gradients,
    as the Python loop it replaced (a training's own gradients drift apart with rounding)."""
    settings = ProxySettings()
    model = _model()
    twin, initial = copy.deepcopy(model), copy.deepcopy(model)
    fused = adamw(model, settings.lr, settings.weight_decay)
    loop = create_optimizer_v2(twin, "adamw", lr=settings.lr, weight_decay=settings.weight_decay, fused=False)
    assert fused.defaults["fused"] and not loop.defaults["fused"]
    assert [g["weight_decay"] for g in fused.param_groups] == [g["weight_decay"] for g in loop.param_groups] == [0.0, 0.05]
    for step in range(5):
        x, y = DATA.x_train[step * 32:(step + 1) * 32], DATA.y_train[step * 32:(step + 1) * 32]
        fused.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        for mine, other in zip(model.parameters(), twin.parameters(), strict=True):
            other.grad = mine.grad.clone()
        fused.step()
        loop.step()
    for mine, other, before in zip(model.parameters(), twin.parameters(), initial.parameters(), strict=True):
        torch.testing.assert_close(mine, other, rtol=1e-5, atol=1e-6)
        assert not torch.equal(mine, before)  # every parameter stepped


def test_only_depthwise_kernels_larger_than_their_map_are_padded_apart_and_the_network_computes_the_same():
    model = _model()
    twin = copy.deepcopy(model)
    changed = pad_small_maps(model, DATA.x_train)
    names = {module: name for name, module in model.named_modules()}
    # stage 2's first block runs on 8x8 (kept), its second on 4x4, stage 3 on 4x4 then 2x2
    assert sorted(names[conv] for conv in changed) == ["blocks.1.1.conv_dw", "blocks.2.0.conv_dw", "blocks.2.1.conv_dw"]
    assert all(conv.padding == (0, 0) for conv in changed)
    assert model.training  # the dry run to find the maps' sizes leaves the mode as it found it
    assert pad_small_maps(model, DATA.x_train) == []  # a second call finds nothing left to move
    state, twin_state = model.state_dict(), twin.state_dict()
    assert state.keys() == twin_state.keys() and all(torch.equal(state[k], twin_state[k]) for k in state)
    x, y = DATA.x_train[:32], DATA.y_train[:32]
    for network in (model, twin):
        F.cross_entropy(network(x), y).backward()
    torch.testing.assert_close(model(x), twin(x), rtol=1e-5, atol=1e-5)
    for (name, mine), other in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, other.grad, rtol=1e-4, atol=1e-5, msg=name)
    model.eval()
    twin.eval()
    with torch.no_grad():  # and at another size, where the same layers would not need it
        big = F.interpolate(x, size=(48, 48))
        torch.testing.assert_close(model(big), twin(big), rtol=1e-5, atol=1e-5)


def test_a_network_built_on_the_meta_device_is_padded_from_an_empty_example():
    with torch.device("meta"):
        model = build_model(NETWORK, num_classes=DATA.num_classes, in_chans=DATA.in_chans)
    changed = pad_small_maps(model, torch.empty(1, DATA.in_chans, RESOLUTION, RESOLUTION, device="meta"))
    assert len(changed) == 3
