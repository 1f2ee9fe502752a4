"""Hypothesis fuzzing of what users type or hand in: the unit parser and the architecture-file
reader raise nothing but the documented one-line ``UsageError``."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.architecture import read_architecture
from nas.errors import UsageError
from nas.units import parse_duration_s, parse_latency_ms
from search_spaces import Genotype

QUANTITIES = st.one_of(
    st.text(max_size=20),
    st.builds(lambda number, space, unit: f"{number}{space}{unit}",
              st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                        st.text(alphabet="0123456789.-+eE٣", max_size=8)),
              st.sampled_from(["", " ", "\t"]),
              st.one_of(st.sampled_from(["us", "µs", "ms", "s", "m", "min", "h", "MS", "sec"]), st.text(max_size=4))),
)


@settings(max_examples=800, deadline=None)
@given(QUANTITIES)
def test_units_parse_to_a_positive_finite_number_or_one_usage_error(text):
    for parse in (parse_latency_ms, parse_duration_s):
        try:
            value = parse(text)
        except UsageError as err:
            assert "\n" not in str(err).strip("\n") or "\n" in text  # the message quotes the input, nothing more
            continue
        assert value > 0 and value != float("inf")


TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16"]], stem_size=8, num_features=32).to_dict()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
ARCHITECTURES = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.builds(lambda key, value: json.dumps({**TINY, key: value}),  # a valid file with one field spoiled
              st.sampled_from(["arch_def", "stem_size", "num_features", "family", "act", "fix_stem", "resolution",
                               "name", "provenance"]), JSON_VALUES),
    st.text(max_size=200),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ARCHITECTURES)
def test_architecture_files_read_or_raise_one_usage_error(tmp_path: Path, text):
    path = tmp_path / "arch.json"
    path.write_text(text)
    try:
        arch = read_architecture(path)
    except UsageError:
        return
    assert arch.genotype.stages and (arch.resolution is None or arch.resolution >= 8)


def test_architecture_file_bytes_that_are_not_text_are_a_usage_error(tmp_path: Path):
    path = tmp_path / "arch.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    try:
        read_architecture(path)
    except UsageError as err:
        assert "not an architecture file" in str(err)
    else:
        raise AssertionError("binary garbage was read as an architecture")
