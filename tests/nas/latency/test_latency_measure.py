"""Real measurement, for plumbing only: what is stored, flagged and fingerprinted (no timed value
is compared with a threshold; the figures computed from times are tested with known times)."""

import pytest
import torch

from nas.errors import UsageError
from nas.latency import (
    DEVICE, LatencySettings, describe, device_fingerprint, fill_entries, keep_freed_memory, measure_latency,
    space_layers,
)
from nas.latency.settings import BACKENDS
from search_spaces import get_space
from storage import Store
from storage import latency as tables

QUICK = LatencySettings(resolution=32, warmup=1, repeats=3, passes=2)


def test_a_measurement_is_the_fastest_pass_median_with_its_spread_and_load():
    measured = measure_latency(torch.nn.Conv2d(3, 8, 3), QUICK)
    assert measured.runs == 6 and len(measured.pass_ms) == 2
    assert measured.latency_ms == min(measured.pass_ms) > 0
    assert measured.spread_ms >= 0 and measured.load_avg >= 0


def test_the_input_shape_is_the_layers_own():
    seen = []
    model = torch.nn.Conv2d(5, 5, 1)
    model.register_forward_hook(lambda module, args, output: seen.append(tuple(args[0].shape)))
    measure_latency(model, QUICK, (1, 5, 7, 7))
    assert set(seen) == {(1, 5, 7, 7)} and len(seen) == 2 * (1 + 3)  # warm-up and timed runs, each pass


def test_freed_memory_is_kept_on_glibc():
    assert keep_freed_memory() in (True, False) and keep_freed_memory() is keep_freed_memory()


def test_real_layers_are_stored_with_their_rounds_and_weights(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    settings = LatencySettings(resolution=64, warmup=1, repeats=3)
    table_id = tables.get_or_create_table(store, device_fingerprint(settings))
    layers = list(space_layers(get_space("tiny"), 64).values())[:3]
    spent, rounds = fill_entries(store, table_id, layers, settings, timer=DEVICE)
    assert rounds == 3 * len(layers) and spent > 0
    assert tables.entry_passes(store, table_id) == {layer.key: 3 for layer in layers}
    entries = tables.load_entries(store, table_id)
    assert all(latency > 0 and params > 0 for latency, params in entries.values())
    assert fill_entries(store, table_id, layers, settings, timer=DEVICE)[1] == 0  # nothing left to measure


def test_the_fingerprint_holds_what_a_latency_depends_on():
    fingerprint = device_fingerprint(LatencySettings(resolution=64))
    assert {"cpu", "threads", "backend", "torch", "resolution", "batch", "passes", "allocator"} <= set(fingerprint)
    assert fingerprint["resolution"] == 64 and fingerprint["backend"] == "torch-cpu"
    assert LatencySettings.from_fingerprint(fingerprint) == LatencySettings(resolution=64)
    assert "64 px" in describe(fingerprint)
    assert device_fingerprint(LatencySettings.for_backend("onnxruntime"))["onnxruntime"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"resolution": 16}, "--resolution must be between"), ({"threads": 0}, "--threads must be between"),
    ({"repeats": 2}, "at least 3 timed runs"), ({"passes": 0}, "one pass"), ({"backend": "tpu"}, "--backend: unknown"),
])
def test_settings_are_checked_at_the_boundary(fields, message):
    with pytest.raises(UsageError, match=message):
        LatencySettings(**fields)


def test_backends_by_their_flags():
    assert LatencySettings.for_backend("torch").backend == BACKENDS["torch"]
    with pytest.raises(UsageError, match="choose one of torch, onnxruntime, cuda"):
        LatencySettings.for_backend("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device"):
            LatencySettings.for_backend("cuda")

