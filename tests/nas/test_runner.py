"""The one trial pipeline: a trial run through ``TrialRunner`` with deterministic estimators
stores exactly the record the storage contract describes; the search and the grid both use it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from fakes import FAKE_DEVICE, BlockLatency, WidthAccuracy

from nas.config import SearchConfig
from nas.results import record_genotype
from nas.reward import Reward
from nas.runner import TrialRunner
from nas.scale import GridConfig, run_grid
from nas.search import run_search
from search_spaces import Genotype, get_space, seed_architecture
from storage import INTERRUPTED, Store, StudyRecord, TrialRecord

REWARD = Reward("soft", 10.0)
ROOT = Path(__file__).resolve().parents[2]


def _study(tmp_path, pruner=None) -> tuple[optuna.Study, Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'runner.db'}")
    return optuna.create_study(storage=store.optuna(), pruner=pruner or optuna.pruners.NopPruner(),
                               direction="maximize"), store


def test_trial_stores_the_contract_record(tmp_path):
    study, store = _study(tmp_path)
    genotype = seed_architecture("mobilenetv2_100")
    runner = TrialRunner(BlockLatency(), WidthAccuracy(), REWARD, resolution=64, store=store)
    study.optimize(lambda trial: runner(trial, genotype), n_trials=1)
    record = TrialRecord.from_trial(study.trials[0])
    accuracy, latency = WidthAccuracy.final(genotype), BlockLatency.value(genotype)
    assert record.state == "COMPLETE"
    assert record.accuracy == accuracy and record.latency_ms == latency and record.latency_source == "measured"
    assert record.reward == pytest.approx(REWARD(accuracy, latency))
    assert record.estimator == "fake" and record.device == FAKE_DEVICE
    assert record.arch_def == genotype.arch_def and record.arch_key == genotype.key
    assert record.params == 3_504_872 and record.macs > 0  # MobileNetV2 1.0 with a 1000-class head
    assert set(record.timings_s) >= {"count_s", "latency_s", "accuracy_s", "store_s"}
    assert study.trials[0].intermediate_values == {0: pytest.approx(REWARD(accuracy / 3, latency)),
                                                   1: pytest.approx(REWARD(2 * accuracy / 3, latency)),
                                                   2: pytest.approx(REWARD(accuracy, latency))}


def test_pruned_trial_keeps_its_last_value(tmp_path):
    study, store = _study(tmp_path, optuna.pruners.ThresholdPruner(lower=2.0))  # every reward < 2: prune at once
    genotype = seed_architecture("mobilenetv2_100")
    runner = TrialRunner(BlockLatency(), WidthAccuracy(), REWARD, resolution=64)
    study.optimize(lambda trial: runner(trial, genotype), n_trials=1)
    trial = study.trials[0]
    record = TrialRecord.from_trial(trial)
    assert trial.state.name == "PRUNED" and record.fail_reason is None
    assert record.accuracy == pytest.approx(WidthAccuracy.final(genotype) / 3)
    assert list(trial.intermediate_values) == [0]


def test_failed_and_interrupted_trials(tmp_path):
    study, store = _study(tmp_path)
    genotype = seed_architecture("mobilenetv2_100")
    failing = TrialRunner(BlockLatency(), WidthAccuracy(fail_with=RuntimeError("loss is nan")), REWARD, resolution=64)
    study.optimize(lambda trial: failing(trial, genotype), n_trials=1, catch=(Exception,))
    assert TrialRecord.from_trial(study.trials[0]).fail_reason == "RuntimeError: loss is nan"

    interrupted = TrialRunner(BlockLatency(), WidthAccuracy(fail_with=KeyboardInterrupt()), REWARD, resolution=64)
    sampled = get_space("tiny")
    with pytest.raises(KeyboardInterrupt):
        study.optimize(lambda trial: interrupted(trial, sampled.sample(trial)), n_trials=1)
    killed, queued = study.trials[1], study.trials[2]
    assert killed.state.name == "FAIL" and TrialRecord.from_trial(killed).fail_reason == INTERRUPTED
    assert queued.state.name == "WAITING" and queued.system_attrs["fixed_params"] == killed.params  # run first on resume


class _InterruptedMidRead(WidthAccuracy):
    """Ctrl-C while a SQLite read of the study's file is under way: the read's cursor, and the
    shared lock its unfinished statement holds, live as long as this frame does."""

    def __init__(self, db: Path) -> None:
        super().__init__()
        self.db = db

    def accuracy(self, genotype, report) -> float:
        reading = sqlite3.connect(self.db).execute("select * from trial_user_attributes")
        reading.fetchone()  # more rows to come: the statement stays active
        raise KeyboardInterrupt


def test_an_interrupt_during_a_database_read_still_stores_why_the_trial_stopped(tmp_path):
    study, store = _study(tmp_path)
    runner = TrialRunner(BlockLatency(), _InterruptedMidRead(tmp_path / "runner.db"), REWARD, resolution=64)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(lambda trial: runner(trial, seed_architecture("mobilenetv2_100")), n_trials=1)
    # had the read's lock outlived the interrupt, the write of why would have waited out SQLite's busy
    # timeout (60 s) and failed, leaving a FAIL without its reason
    trial = study.trials[0]
    assert trial.state.name == "FAIL" and TrialRecord.from_trial(trial).fail_reason == INTERRUPTED


def test_search_runs_trials_through_the_runner(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'search.db'}")
    config = SearchConfig(target_latency_ms=10.0, space="tiny", trials=4, seed_archs=("mobilenetv2_100",))
    result = run_search(config, store, accuracy=WidthAccuracy(), latency=BlockLatency())
    assert result.counts == {"COMPLETE": 4}
    study = optuna.load_study(study_name=result.study_name, storage=store.optuna())
    records = [TrialRecord.from_trial(t) for t in study.trials]
    assert all(r.estimator == "fake" and r.device == FAKE_DEVICE for r in records)
    assert {r.seed_arch for r in records} >= {"mobilenetv2_100"} and records[0].warm_start == "tiny"
    settings = StudyRecord.from_study(study)
    assert settings.estimator == {**WidthAccuracy().settings, "spec": "train"} and settings.dataset == "digits"
    for record in records:
        if record.state == "COMPLETE":
            assert record.reward == pytest.approx(config.reward_fn(record.accuracy, record.latency_ms))
    again = run_search(config, store, accuracy=WidthAccuracy(), latency=BlockLatency())  # resumes, runs nothing
    assert again.ran == 0 and len(study.trials) == len(optuna.load_study(
        study_name=result.study_name, storage=store.optuna()).trials)


def test_grid_runs_points_through_the_runner(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'grid.db'}")
    config = GridConfig(base="mobilenetv2_100", step=0.25, tolerance=0.15, max_value=1.5, resolution=64,
                        target_latency_ms=40.0)
    result = run_grid(config, store, plot_path=tmp_path / "grid.html",
                      estimators=lambda latency, proxy: (BlockLatency(), WidthAccuracy()))
    assert result.points and all(p.state == "COMPLETE" for p in result.points)
    study = optuna.load_study(study_name=result.study_name, storage=store.optuna())
    for trial in study.trials:
        record = TrialRecord.from_trial(trial)
        assert record.estimator == "fake" and record.alpha is not None and record.resolution is not None
        genotype = record_genotype(record)
        assert record.latency_ms == BlockLatency.value(genotype) and record.accuracy == WidthAccuracy.final(genotype)
    assert (tmp_path / "grid.html").is_file()


def test_hybrid_screens_every_candidate_and_trains_exactly_k(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hybrid.db'}")
    config = SearchConfig(target_latency_ms=10.0, space="tiny", trials=6, estimator="hybrid:params:2")
    run_search(config, store, accuracy=WidthAccuracy(), latency=BlockLatency())
    study = optuna.load_study(study_name=config.study_name, storage=store.optuna())
    screened = [t for t in study.trials if TrialRecord.from_trial(t).estimator == "params"]
    trained = [t for t in study.trials if TrialRecord.from_trial(t).estimator == "fake"]
    assert len(screened) == 6 and all(t.state.name == "PRUNED" for t in screened)
    assert len(trained) == 2 and all(t.state.name == "COMPLETE" for t in trained)
    best_two = sorted(screened, key=lambda t: -t.intermediate_values[0])[:2]
    assert {TrialRecord.from_trial(t).arch_key for t in best_two} == {TrialRecord.from_trial(t).arch_key for t in trained}
    for trial in trained:
        record = TrialRecord.from_trial(trial)
        twin = next(TrialRecord.from_trial(t) for t in screened if TrialRecord.from_trial(t).arch_key == record.arch_key)
        assert record.scores == {"params": twin.accuracy} and record.accuracy == WidthAccuracy.final(record_genotype(record))
    again = run_search(config, store, accuracy=WidthAccuracy(), latency=BlockLatency())
    assert again.ran == 0  # both budgets are spent: the same command resumes and runs nothing


def test_an_architecture_timm_cannot_build_fails_with_its_reason_and_the_next_trial_runs(tmp_path):
    study, store = _study(tmp_path)
    unbuildable = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k3_s9_e3_c16"]], stem_size=8, num_features=32)
    genotypes = iter([unbuildable, seed_architecture("mobilenetv2_100")])
    runner = TrialRunner(BlockLatency(), WidthAccuracy(), REWARD, resolution=64)
    study.optimize(lambda trial: runner(trial, next(genotypes)), n_trials=2, catch=(Exception,))
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert TrialRecord.from_trial(study.trials[0]).fail_reason == (
        "UnbuildableArchitecture: timm cannot build this architecture (AssertionError)")  # timm's bare assert, named


def test_a_trial_out_of_memory_says_so_first(tmp_path):
    study, _ = _study(tmp_path)
    runner = TrialRunner(BlockLatency(), WidthAccuracy(fail_with=MemoryError()), REWARD, resolution=64)
    study.optimize(lambda trial: runner(trial, seed_architecture("mobilenetv2_100")), n_trials=1, catch=(Exception,))
    assert TrialRecord.from_trial(study.trials[0]).fail_reason == "out of memory: MemoryError"


OUT_OF_MEMORY = """
import resource, sys
from fakes import BlockLatency
from nas import ProxySettings, SearchConfig, run_search
from nas.threads import torch_threads
from storage import Store

with torch_threads(1):
    size = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, size + 2**30))  # 1 GiB more than it holds
    # 512 images of 256x256: one feature map is 0.5 GiB
    config = SearchConfig(space="tiny", target_latency_ms=2.0, trials=2, proxy=ProxySettings(batch_size=512, resolution=256))
    print(run_search(config, Store.open(sys.argv[1]), latency=BlockLatency()).counts)
"""


@pytest.mark.slow
def test_training_out_of_memory_is_fail_with_its_reason_and_the_search_goes_on(tmp_path, nas_cli):
    """Real proxy training in a process whose address space is capped: torch's allocation fails."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY, url], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "{'FAIL': 2}", done.stderr  # both trials ran to their end
    listed = nas_cli.json("trials", "--storage", url)["trials"]
    assert [t["state"] for t in listed] == ["FAIL", "FAIL"]
    assert all(t["fail_reason"].startswith("out of memory: ") and "allocate" in t["fail_reason"] for t in listed)
