"""Hypothesis fuzzing of the block-string grammar: any input decodes or raises ``ValueError``,
and whatever decodes encodes back to a string that decodes to the same block."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import Genotype
from search_spaces.blocks import ACTIVATIONS, BLOCK_TYPES, decode, encode

TOKENS = st.one_of(
    st.sampled_from(["skip", "noskip", *(f"n{code}" for code in ACTIVATIONS)]),
    st.builds(lambda key, number: f"{key}{number}", st.sampled_from(["r", "k", "a", "p", "s", "e", "c", "se", "gs"]),
              st.one_of(st.integers(-3, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                        st.text(alphabet="0123456789.-e٣", max_size=6))),
    st.text(max_size=8),
)
BLOCK_STRINGS = st.one_of(
    st.text(max_size=40),
    st.builds(lambda head, tokens: "_".join([head, *tokens]),
              st.one_of(st.sampled_from(list(BLOCK_TYPES)), st.text(max_size=4)), st.lists(TOKENS, max_size=10)),
)


@settings(max_examples=600, deadline=None)
@given(BLOCK_STRINGS)
def test_decode_raises_only_value_error_and_round_trips(text):
    try:
        block = decode(text)
    except ValueError as err:
        assert "\n" not in str(err)  # one line, for the CLI
        return
    assert decode(encode(block)) == block


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12) | BLOCK_STRINGS,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_arch_def_of_any_shape_decodes_or_raises_value_error(arch_def):
    try:
        Genotype.from_arch_def(arch_def)
    except ValueError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["stem_size", "num_features", "family", "act", "fix_stem"]),
                       st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
                       | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
def test_network_fields_of_any_type_raise_value_error(network):
    try:
        Genotype.from_arch_def([["ds_r1_k3_s1_c8"]], **network)
    except ValueError:
        pass
