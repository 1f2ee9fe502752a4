import itertools

import pytest

from search_spaces import SEED_NAMES, Block, Genotype, seed_architecture
from search_spaces.blocks import decode, encode


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_seed_arch_def_round_trips(name):
    genotype = seed_architecture(name)
    arch_def = genotype.arch_def
    for stage in arch_def:
        for text in stage:
            assert encode(decode(text)) == text
    assert Genotype.from_arch_def(arch_def, **genotype.network()) == genotype
    assert Genotype.from_json(genotype.to_json()) == genotype


def test_blocks_round_trip_through_the_grammar():
    for block_type, kernel, stride, exp, se, act, skip in itertools.product(
        ["ds", "dsa", "ir", "cn", "er"], [1, 3, 5], [1, 2], [None, 1.0, 2.3, 3.67, 6.0], [None, 0.25],
        [None, "relu", "hard_swish", "swish", "relu6"], [None, False, True],
    ):
        if block_type in ("ir", "er") and exp is None:
            continue
        block = Block(block_type, 2, kernel, stride, 40, exp, se, act, skip)
        assert decode(encode(block)) == block


@pytest.mark.parametrize("text, token", [
    ("xx_r1_k3_s1_c16", "xx"),
    ("ir_r1_k3_s1_e6_c16_zz", "zz"),
    ("ir_r1_k3_s1_e6_c16_nqq", "nqq"),
    ("ir_r1.5_k3_s1_e6_c16", "r1.5"),
    ("ir_r1_k3_s1_e6_c16_c32", "c32"),
])
def test_malformed_block_strings_name_the_bad_token(text, token):
    with pytest.raises(ValueError, match=repr(token).replace("[", r"\[")):
        decode(text)


@pytest.mark.parametrize("text, missing", [("ir_r1_k3_s1_c16", "expansion"), ("ds_r1_s1_c16", "k")])
def test_block_strings_missing_options_are_refused(text, missing):
    with pytest.raises(ValueError, match=missing):
        decode(text)


def test_arch_def_must_be_a_list_of_lists():
    with pytest.raises(ValueError, match="list of stages"):
        Genotype.from_arch_def(["ds_r1_k3_s1_c16"])


def test_genotype_is_hashable_and_keyed_by_content():
    a, b = seed_architecture("mobilenetv2_100"), Genotype.from_json(seed_architecture("mobilenetv2_100").to_json())
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert a.key != seed_architecture("mnasnet_100").key
    assert len({a, b, seed_architecture("mnasnet_100")}) == 2


def test_with_max_stride_keeps_blocks_and_moves_early_strides():
    genotype = seed_architecture("mobilenetv2_100")
    assert genotype.total_stride == 32
    proxy = genotype.with_max_stride(8)
    assert proxy.total_stride == 8
    assert [b.stride for s in proxy.stages for b in s] == [1, 1, 1, 2, 1, 2, 1]
    assert [b.with_(stride=1) for s in proxy.stages for b in s] == [b.with_(stride=1) for s in genotype.stages for b in s]
