import math

import optuna
import pytest

from search_spaces import SPACES, build_model, get_space, seed_architecture


def _sample(space_name, seed, n, sampler_cls=optuna.samplers.TPESampler):
    study = optuna.create_study(sampler=sampler_cls(seed=seed))
    space = get_space(space_name)
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.sample(trial))
        study.tell(trial, 0.0)
    return out


@pytest.mark.parametrize("sampler_cls", [optuna.samplers.TPESampler, optuna.samplers.RandomSampler])
def test_sampling_is_deterministic_under_a_seed(sampler_cls):
    first, again, other = (_sample("mbconv", s, 6, sampler_cls) for s in (7, 7, 8))
    assert first == again
    assert first != other


def test_parameter_names_are_stable():
    study = optuna.create_study()
    trial = study.ask()
    get_space("mbconv").sample(trial)
    assert set(trial.params) == {f"s{i}_{k}" for i in range(7)
                                 for k in ("op", "kernel", "se", "act", "skip", "width", "layers")}


def test_size_counts_distinct_choices():
    tiny = get_space("tiny")
    # 3 stages x (2 ops x 2 kernels x 2 se x 2 acts x 1 skip x 1 width x 2 depths)
    assert tiny.size == 32 ** 3
    mbconv = get_space("mbconv")
    per_stage = 4 * 2 * 2 * 2 * 2 * 3
    depth_choices = [2 if r == 1 else 3 for r, _, _ in mbconv.skeleton]
    assert mbconv.size == math.prod(per_stage * d for d in depth_choices)


def test_sampled_architectures_build_and_respect_the_space():
    for genotype in _sample("mbconv", 3, 5, optuna.samplers.RandomSampler):
        assert len(genotype.stages) == 7
        assert all(b.out_chs % 8 == 0 and b.repeats >= 1 for s in genotype.stages for b in s)
        assert sum(p.numel() for p in build_model(genotype).parameters()) > 0


def test_unknown_space_lists_valid_ones():
    with pytest.raises(ValueError, match=", ".join(SPACES)):
        get_space("nope")


def test_reference_params_sample_the_skeleton_network():
    space = get_space("mbconv")
    genotype = space.sample(optuna.trial.FixedTrial(space.reference_params()))
    assert genotype.arch_def == [
        ["ds_r1_k3_s1_c16_nre"], ["ir_r2_k3_s2_e6_c24_nre"], ["ir_r3_k3_s2_e6_c32_nre"], ["ir_r4_k3_s2_e6_c64_nre"],
        ["ir_r3_k3_s1_e6_c96_nre"], ["ir_r3_k3_s2_e6_c160_nre"], ["ir_r1_k3_s1_e6_c320_nre"],
    ]


def test_fused_ops_are_timm_edge_residual_blocks():
    space = get_space("mbconv-fused")
    params = {**space.reference_params(), "s1_op": "fmb4", "s2_op": "fmb1", "s2_kernel": 5}
    genotype = space.sample(optuna.trial.FixedTrial(params))
    assert genotype.arch_def[1:3] == [["er_r2_k3_s2_e4_c24_nre"], ["er_r3_k5_s2_e1_c32_nre"]]
    model = build_model(genotype)
    assert [type(b).__name__ for b in model.blocks[1]] == ["EdgeResidual"] * 2
    assert model.blocks[1][0].conv_exp.kernel_size == (3, 3) and model.blocks[1][0].conv_exp.out_channels == 4 * 16


def test_the_shared_space_keeps_every_residual_and_only_mbconv():
    """What a supernet cannot share (op type, skip on/off) is not a choice of ``mbconv-shared``."""
    for genotype in _sample("mbconv-shared", 0, 12, optuna.samplers.RandomSampler):
        model = build_model(genotype)
        blocks = [block for stage in model.blocks for block in stage]
        assert {type(block).__name__ for block in blocks} == {"InvertedResidual"}
        assert {block.conv_pw.out_channels / block.conv_pw.in_channels for block in blocks} <= {3.0, 6.0}
        shapes_allow = [block.conv_dw.stride == (1, 1) and block.conv_pw.in_channels == block.conv_pwl.out_channels
                        for block in blocks]
        assert [block.has_skip for block in blocks] == shapes_allow


def test_params_of_gives_the_parameters_that_sample_a_network_and_none_outside_the_space():
    for name in ("mbconv", "mbconv-fused", "mbconv-shared"):
        space = get_space(name)
        for genotype in _sample(name, 1, 4, optuna.samplers.RandomSampler):
            assert space.sample(optuna.trial.FixedTrial(space.params_of(genotype))) == genotype
    mbconv = get_space("mbconv")
    skeleton_network = mbconv.sample(optuna.trial.FixedTrial(mbconv.reference_params()))  # a ds first stage
    assert mbconv.params_of(skeleton_network) is not None
    assert get_space("mbconv-shared").params_of(skeleton_network) is None
    assert mbconv.params_of(seed_architecture("mobilenetv2_100")) is None  # ReLU6 is not one of its activations

