"""`--runner ray`: Ray Tune trials on a real local Ray instance (2 CPUs), into a real PostgreSQL study."""

import os
import uuid
from pathlib import Path

import pytest
from optuna.trial import TrialState

from fakes import FAKE_DEVICE, BlockLatency, NanAccuracy, WidthAccuracy
from nas import SearchConfig
from nas.results import load_study, record_genotype
from storage import Store, TrialRecord

pytestmark = pytest.mark.slow  # starts Ray (seconds) and a Ray worker per concurrent trial

TESTS = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; its workers import the repository and the fakes."""
    import ray  # a dependency of nas (`--runner ray`): missing, the test fails rather than skips
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join([str(TESTS.parent), str(TESTS)]))  # the package before tests/nas
        from nas.ray_runner import start_ray

        assert start_ray(None, 2)
        try:
            yield
        finally:
            ray.shutdown()


def _search(url: str, trials: int, accuracy, pruner: str = "none") -> tuple[Store, str, object]:
    from nas.ray_runner import run_ray_search

    store, name = Store.open(url), f"ray-{uuid.uuid4().hex[:8]}"
    config = SearchConfig(space="tiny", target_latency_ms=2.0, trials=trials, pruner=pruner, study=name)
    result = run_ray_search(config, store, workers=2, accuracy=accuracy, latency=BlockLatency())
    return store, name, result


def test_ray_trials_land_in_the_study_with_the_full_contract(local_ray, postgres_url, nas_cli):
    store, name, result = _search(postgres_url, 4, WidthAccuracy())
    assert result.ran == 4 and result.counts == {"COMPLETE": 4}
    study = load_study(store, name)
    assert len({t.number for t in study.trials}) == 4
    reward = SearchConfig(space="tiny", target_latency_ms=2.0).reward_fn
    for trial in study.trials:
        record = TrialRecord.from_trial(trial)
        genotype = record_genotype(record)
        assert record.accuracy == pytest.approx(WidthAccuracy.final(genotype))
        assert record.latency_ms == pytest.approx(BlockLatency.value(genotype)) and record.latency_source == "measured"
        assert record.device["cpu"] == FAKE_DEVICE["cpu"] and record.estimator == "fake"
        assert record.params > 0 and record.macs > 0 and record.arch_key == genotype.key
        assert set(record.timings_s) >= {"sample_s", "latency_s", "accuracy_s", "store_s"}
        assert trial.value == pytest.approx(reward(record.accuracy, record.latency_ms))
        # every epoch's report is the trial's own: Tune's final result did not overwrite step 1
        assert trial.intermediate_values[1] == pytest.approx(reward(record.accuracy * 2 / 3, record.latency_ms))
    assert TrialRecord.from_trial(study.trials[0]).warm_start == "tiny"
    listed = nas_cli.json("trials", "--storage", postgres_url, "--study", name)
    assert sorted(t["number"] for t in listed["trials"]) == [0, 1, 2, 3]


def test_nan_and_exceptions_on_the_ray_path_leave_no_trial_running(local_ray, postgres_url):
    store, name, result = _search(postgres_url, 2, NanAccuracy())
    assert result.counts == {"FAIL": 2}
    for trial in load_study(store, name).trials:
        assert "not a number" in TrialRecord.from_trial(trial).fail_reason
    store, name, result = _search(postgres_url, 2, WidthAccuracy(fail_with=RuntimeError("estimator broke")))
    assert result.counts == {"FAIL": 2}
    trials = load_study(store, name).trials
    assert [TrialRecord.from_trial(t).fail_reason for t in trials] == ["RuntimeError: estimator broke"] * 2
    assert all(t.state == TrialState.FAIL and TrialRecord.from_trial(t).latency_ms > 0 for t in trials)  # measured before


def test_optunas_pruner_stops_ray_trials_as_in_a_local_search(local_ray, postgres_url):
    store, name, result = _search(postgres_url, 6, WidthAccuracy(), pruner="sha")
    assert set(result.counts) <= {"COMPLETE", "PRUNED"} and sum(result.counts.values()) == 6
    pruned = [t for t in load_study(store, name).trials if t.state == TrialState.PRUNED]
    assert pruned  # successive halving keeps a third at each rung: six trials cannot all pass
    for trial in pruned:  # stopped after an epoch, its value the last one reported
        assert len(trial.intermediate_values) < WidthAccuracy().steps
        assert trial.value == trial.intermediate_values[max(trial.intermediate_values)]
