"""bench/readoff_cost.py: a read-off's work is its images through the candidate's timm network."""

import random

import pytest
import torch
from bench_scripts import load
from torch.utils.flop_counter import FlopCounterMode

from nas.data import load_proxy_data
from nas.proxy import proxy_genotype
from nas.supernet import Supernet, calibration_batches, random_genotype
from nas.supernet.train import CALIBRATION_BATCHES
from search_spaces import build_model, get_space

_cost = load("readoff_cost")
RESOLUTION = 16


@pytest.mark.usefixtures("one_thread")
def test_a_read_off_counts_every_image_through_the_candidate_s_timm_network():
    data = load_proxy_data("digits", RESOLUTION)
    space = get_space("tiny")
    supernet = Supernet(space, num_classes=data.num_classes, in_chans=data.in_chans, resolution=RESOLUTION)
    calibration = calibration_batches(data, 64)
    genotype = random_genotype(space, random.Random(0))
    cost = _cost.readoff_cost(supernet, genotype, calibration, data.x_val, data.y_val)
    assert cost["images"] == CALIBRATION_BATCHES * 64 + len(data.x_val)  # the estimator's calibration draw and the whole validation split
    model = build_model(proxy_genotype(genotype, RESOLUTION), num_classes=data.num_classes, in_chans=data.in_chans).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(data.x_val[:1])
    assert cost["mflop_per_image"] == counter.get_total_flops() / 1e6 > 0
    assert cost["gflop"] == pytest.approx(cost["mflop_per_image"] * cost["images"] / 1e3)
