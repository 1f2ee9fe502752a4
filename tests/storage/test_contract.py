"""The storage contract as a type: what nas writes, it reads back; what earlier versions wrote
(a database made by the code before the contract became a type) stays readable."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

import optuna
import pytest

from storage import Store, StudyRecord, TrialRecord, read_device, write_trial

DATA = Path(__file__).parent / "data"


@pytest.fixture()
def old_store(tmp_path) -> Store:
    """A copy of studies written by nas 0.1 before this contract: a search and a scaling grid."""
    shutil.copy(DATA / "studies-v1.db", tmp_path / "v1.db")
    return Store.open(f"sqlite:///{tmp_path / 'v1.db'}")


def test_studies_written_before_the_contract_read_the_same(old_store):
    expected = json.loads((DATA / "studies-v1.json").read_text())
    for name, old in expected.items():
        study = optuna.load_study(study_name=name, storage=old_store.optuna())
        settings = StudyRecord.from_study(study)
        for key, value in old["study_attrs"].items():
            assert getattr(settings, key) == (read_device(value) if key == "device" else value)
        records = [TrialRecord.from_trial(t) for t in study.trials]
        assert len(records) == len(old["trials"])
        for record, stored in zip(records, old["trials"], strict=True):
            for key, value in stored.items():
                expected_value = read_device(value) if key == "device" and value else value  # measured with memory kept
                assert getattr(record, key) == expected_value, (name, record.number, key)
    grid = optuna.load_study(study_name="scale-tiny-5ms-soft-0", storage=old_store.optuna())
    point = TrialRecord.from_trial(grid.trials[0])
    assert point.alpha is not None and point.gamma is not None and point.proxy_resolution is not None


def test_the_read_commands_work_on_an_old_database(old_store):
    from dashboards.report import build_report
    from nas.results import load_study, rank, study_reward

    study = load_study(old_store, "tiny-5ms-soft")
    ranked = rank(study, study_reward(study))
    assert [r.number for _, r in ranked] and all(score > 0 for score, _ in ranked)
    report = build_report(study, old_store)
    assert report.summary["space"] == "tiny" and report.summary["trials"] == 3


def test_written_fields_read_back(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}")
    study = optuna.create_study(storage=store.optuna())
    trial = study.ask()
    written = TrialRecord(arch_def=[["ds_r1_k3_s1_c8"]], network={"stem_size": 8}, arch_key="k", params=10, macs=20,
                          latency_ms=1.5, latency_spread_ms=0.1, load_avg=0.2, latency_source="lut",
                          latency_predicted_ms=1.5, device={"cpu": "x", "allocator": "default"}, accuracy=0.5, estimator="train",
                          scores={"synflow": 3.0}, seed_arch="mobilenetv2_100", timings_s={"count_s": 0.1},
                          alpha=1.2, resolution=64)
    write_trial(trial, **written.to_attrs())
    study.tell(trial, 0.25)
    read = TrialRecord.from_trial(study.trials[0])
    assert read == TrialRecord(number=0, state="COMPLETE", reward=0.25, **written.to_attrs())
    assert set(written.to_attrs()) <= {f.name for f in fields(TrialRecord)}


def test_unknown_names_and_settings_mismatch():
    with pytest.raises(TypeError, match="latency"):
        write_trial(optuna.create_study().ask(), latency=1.0)
    ours = StudyRecord(space="tiny", target_latency_ms=2.0, estimator={"name": "train"})
    assert ours.mismatch(StudyRecord(space="tiny", target_latency_ms=3.0), ("space", "target_latency_ms")) == \
        ("target_latency_ms", 3.0, 2.0)
    # a setting an older version did not store is not compared
    assert ours.mismatch(StudyRecord(space="tiny", target_latency_ms=2.0), ("space", "estimator")) is None
    # of the estimator, only which one it is: its settings (the training epochs) may change on resume
    assert ours.mismatch(StudyRecord(estimator={"name": "train", "epochs": 60}), ("estimator",)) is None
    assert ours.mismatch(StudyRecord(estimator={"name": "synflow"}), ("estimator",)) == ("estimator", "synflow", "train")
