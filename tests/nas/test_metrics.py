"""Parameters and MACs come from torch's own counter on the meta device, alike for every caller."""

import optuna

from nas.metrics import count_macs, count_params, count_size
from search_spaces import build_model, get_space


def test_one_build_counts_what_a_real_network_holds_and_the_paper_reports():
    space = get_space("mbconv")
    mobilenetv2 = space.sample(optuna.trial.FixedTrial(space.reference_params()))  # the space's skeleton network
    params, macs = count_size(mobilenetv2, 224)
    assert params == count_params(build_model(mobilenetv2)) and macs == count_macs(mobilenetv2, 224)
    assert 3.4e6 < params < 3.6e6 and 290e6 < macs < 310e6  # MobileNetV2 1.0: 3.5M parameters, 300M MACs
    assert count_size(mobilenetv2, 112) == (params, count_macs(mobilenetv2, 112)) and count_size(mobilenetv2, 112)[1] < macs / 3
