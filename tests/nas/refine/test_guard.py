"""A refinement holds its study's lock for the whole run: a second one is refused in one line, and a
trial that a killed run left RUNNING is failed (with why) when the same command runs again."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from inprocess import run_nas
from nas.architecture import Architecture
from nas.errors import EXIT_NOT_REACHED
from nas.latency import LatencySettings
from nas.refine import RefineConfig, refine
from nas.refine.guard import study_lock
from search_spaces import Genotype
from storage import INTERRUPTED, Store, TrialRecord

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16"]], stem_size=8, num_features=32)
# half the start's latency per iteration: no proposal reaches 1 us within a few iterations
CONFIG = RefineConfig(target_latency_ms=0.001, step_fraction=0.5, decay=1.0, short_tune=1, long_tune=1, pretrain=2,
                      latency=LatencySettings(resolution=64), study="r")
COMMAND = ["refine", "tiny.json", "--target-latency", "0.001ms", "--step-fraction", "0.5", "--decay", "1",
           "--short-tune", "1", "--long-tune", "1", "--pretrain", "2", "--resolution", "64", "--refine-study", "r", "--json"]


class _StopBeforeTheEnd:
    """A progress callback that presses Ctrl-C as the long fine-tuning begins: the path is stored, the
    result is not."""

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase.startswith("long-tune"):
            raise KeyboardInterrupt


@pytest.fixture()
def database(tmp_path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.json").write_text(json.dumps({"name": "tiny", **TINY.to_dict()}))
    return f"sqlite:///{tmp_path / 'nas.db'}"


def test_a_second_refinement_of_the_same_study_is_refused(database, monkeypatch, capsys):
    with study_lock(Store.open(database), "r"):
        code, stderr = run_nas([*COMMAND, "--storage", database], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == [stderr.strip()] and "another `nas refine` is working on study 'r'" in stderr


def test_a_trial_left_running_by_a_killed_run_is_failed_and_the_refinement_completes(database, monkeypatch, capsys,
                                                                                     one_thread):
    store = Store.open(database)
    with pytest.raises(KeyboardInterrupt):
        refine(Architecture("tiny", TINY), CONFIG, store, _StopBeforeTheEnd())
    study = optuna.load_study(study_name="r", storage=database)
    left = study.ask()  # what a killed refinement leaves: a trial no process will tell
    code, stderr = run_nas([*COMMAND, "--storage", database], monkeypatch, capsys)
    assert code in (0, EXIT_NOT_REACHED), stderr
    trials = [TrialRecord.from_trial(t) for t in study.get_trials()]
    abandoned = trials[left.number]
    assert abandoned.state == TrialState.FAIL.name and abandoned.fail_reason == INTERRUPTED
    assert not [t for t in trials if t.state == TrialState.RUNNING.name]
    assert [t.proposal for t in trials if t.state == TrialState.COMPLETE.name].count("final") == 1
