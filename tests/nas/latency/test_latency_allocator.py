"""The allocator is part of the device: in the fingerprint, in every description of it, and a table
or study of another allocator is never used. Fingerprints stored before it was recorded read as
``kept``, what they were measured with."""

import optuna
import pytest
import torch

from known_latency import KnownDevice
from nas.errors import UsageError
from nas.latency import LatencySettings, build_table, describe, device_fingerprint, find_predictor
from nas.latency.allocator import (
    KEPT_ENVIRONMENT, deployment_environment, environment_allocator, use_allocator, with_allocator,
)
from storage import StudyRecord, Store
from storage import latency as tables

KEPT, DEFAULT = LatencySettings(resolution=64), LatencySettings(resolution=64, allocator="default")


def _without_allocator(fingerprint: dict) -> dict:
    return {k: v for k, v in fingerprint.items() if k != "allocator"}


def test_the_allocator_is_in_the_fingerprint_and_its_description():
    kept, default = device_fingerprint(KEPT), device_fingerprint(DEFAULT)
    assert kept["allocator"] == "kept" and default["allocator"] == "default"
    assert _without_allocator(kept) == _without_allocator(default)
    assert "allocator kept" in describe(kept) and "allocator default" in describe(default)
    assert LatencySettings.from_fingerprint(default) == DEFAULT
    with pytest.raises(UsageError, match="--allocator: unknown 'jemalloc'; choose one of kept, default"):
        LatencySettings(allocator="jemalloc")


def test_a_fingerprint_stored_before_allocators_were_recorded_reads_as_kept():
    old = _without_allocator(device_fingerprint(KEPT))
    assert "allocator kept" in describe(old) and LatencySettings.from_fingerprint(old) == KEPT
    assert tables.device_key(old) == tables.device_key(device_fingerprint(KEPT))  # the old table keeps its key
    assert tables.device_key(old) != tables.device_key(device_fingerprint(DEFAULT))


def test_a_table_of_the_other_allocator_is_never_used(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    build_table(store, "tiny", DEFAULT, calibration_samples=5, timer=KnownDevice())
    assert find_predictor(store, DEFAULT, "tiny") is not None
    assert find_predictor(store, KEPT, "tiny") is None
    build_table(store, "tiny", KEPT, calibration_samples=5, timer=KnownDevice())
    assert find_predictor(store, KEPT, "tiny").table_id != find_predictor(store, DEFAULT, "tiny").table_id


def test_a_table_stored_before_allocators_were_recorded_is_a_kept_table(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    table_id = tables.get_or_create_table(store, _without_allocator(device_fingerprint(KEPT)))
    assert tables.find_table(store, device_fingerprint(KEPT)) == table_id
    assert tables.find_table(store, device_fingerprint(DEFAULT)) is None


def test_a_study_of_another_allocator_does_not_resume_and_an_old_one_does():
    study = optuna.create_study()
    study.set_user_attr("device", _without_allocator(device_fingerprint(KEPT)))
    stored = StudyRecord.from_study(study)
    assert stored.device["allocator"] == "kept"
    assert StudyRecord(device=device_fingerprint(KEPT)).mismatch(stored, ("device",)) is None
    key, _, ours = StudyRecord(device=device_fingerprint(DEFAULT)).mismatch(stored, ("device",))
    assert key == "device" and ours["allocator"] == "default"


def test_the_environment_says_which_allocator_a_fresh_process_runs():
    assert environment_allocator({}) == "default"
    assert environment_allocator(KEPT_ENVIRONMENT) == "kept"
    assert environment_allocator({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1073741824"}) == "kept"
    assert environment_allocator({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", **KEPT_ENVIRONMENT}) == "jemalloc"
    assert environment_allocator({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}) == "tcmalloc"
    base = {"PATH": "/bin", "MALLOC_TRIM_THRESHOLD_": "1"}
    assert with_allocator(base, "kept") == {"PATH": "/bin", **KEPT_ENVIRONMENT}
    assert with_allocator(base, "default") == {"PATH": "/bin"}
    assert deployment_environment("kept", 2) == {"OMP_NUM_THREADS": "2", **KEPT_ENVIRONMENT}
    assert deployment_environment("default", 1) == {"OMP_NUM_THREADS": "1"}


def test_glibc_cannot_go_back_to_default_once_memory_is_kept():
    use_allocator("kept")
    with pytest.raises(UsageError, match="already keeps freed memory"):
        use_allocator("default")


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device on this machine: a CUDA table is built and validated only where a GPU is lent")
def test_a_cuda_table_builds_for_tiny(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    settings = LatencySettings.for_backend("cuda", resolution=64)
    result = build_table(store, "tiny", settings, calibration_samples=5)
    assert result.device["backend"] == "torch-cuda" and result.device["gpu"] and result.entries > 0
    assert find_predictor(store, settings, "tiny") is not None
