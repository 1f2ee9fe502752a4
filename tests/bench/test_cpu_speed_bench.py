"""bench/cpu_speed.py: its three ways start from the same weights and differ only in the optimizer
and the padding, and it times exactly the layers `nas.cpu_speed` pads apart."""

import pytest
import torch
from bench_scripts import load
from small_maps import NETWORK, RESOLUTION

from nas.data import load_proxy_data
from nas.proxy import ProxySettings

_bench = load("cpu_speed")
DATA = load_proxy_data("digits", RESOLUTION)


@pytest.mark.usefixtures("one_thread")
def test_the_three_ways_start_alike_and_differ_only_in_optimizer_and_padding():
    trainers, layers = _bench.trainers_for(NETWORK, DATA, ProxySettings(), steps=10)
    assert list(trainers) == ["before", "fused", "now"]
    assert [optimizer.defaults["fused"] for _, optimizer, _ in trainers.values()] == [False, True, True]
    before, fused, now = (model for model, _, _ in trainers.values())
    for a, b, c in zip(before.parameters(), fused.parameters(), now.parameters(), strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)

    def depthwise_paddings(model: torch.nn.Module) -> list[tuple[int, int]]:
        return [m.padding for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]

    assert depthwise_paddings(before) == depthwise_paddings(fused) == [(2, 2)] * 5
    assert depthwise_paddings(now) == [(2, 2), (2, 2), (0, 0), (0, 0), (0, 0)]
    # (channels, input map, kernel, stride) of the three it pads apart: stage 2's second block, stage 3's two
    assert [(side, kernel, stride) for _, side, kernel, stride in layers] == [(4, 5, 1), (4, 5, 2), (2, 5, 1)]
