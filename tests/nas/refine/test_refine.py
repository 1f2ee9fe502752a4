"""`nas refine` on a `tiny` network: real latency table, real training, real SQLite; resume; bad input."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import optuna
import pytest
from optuna.trial import TrialState

from inprocess import run_nas
from known_latency import KnownDevice, network_ms
from nas.architecture import Architecture
from nas.errors import EXIT_NOT_REACHED, UsageError
from nas.latency import LatencySettings
from nas.refine import RefineConfig, refine
from nas.refine.proposals import widths
from search_spaces import Genotype
from storage import Store, StudyRecord, TrialRecord

TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r2_k3_s2_e3_c16"], ["ir_r2_k5_s2_e3_c24_se0.25"]],
                              stem_size=8, num_features=64)
# big cuts (3% of the start's latency each, no decay) so that a few iterations reach the narrowest widths
FAST = dict(target_latency_ms=0.01, step_fraction=0.03, decay=1.0, short_tune=2, long_tune=3, pretrain=6,
            latency=LatencySettings(resolution=224))


class _Interrupt:
    """A progress callback that presses Ctrl-C once iteration 2 has finished one proposal."""

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase.startswith("iteration 2:") and done == 1:
            raise KeyboardInterrupt


def _trials(store: Store, study: str) -> list[TrialRecord]:
    return [TrialRecord.from_trial(t) for t in optuna.load_study(study_name=study, storage=store.optuna()).get_trials()]


def test_refine_shrinks_stores_every_step_and_resumes(tmp_path, monkeypatch, capsys, one_thread):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    store = Store.open(url)
    config = RefineConfig(**FAST)
    with pytest.raises(KeyboardInterrupt):
        refine(Architecture("tiny", TINY), config, store, _Interrupt())
    study = config.study_name("tiny")
    before = _trials(store, study)
    kept_1 = [r for r in before if r.iteration == 1]
    second = [r for r in before if r.iteration == 2 and r.state == TrialState.COMPLETE.name]
    assert [r.proposal for r in before if r.iteration == 0] == ["start"] and kept_1 and len(second) == 1

    (tmp_path / "tiny.json").write_text(json.dumps({"name": "tiny", **TINY.to_dict()}))
    monkeypatch.chdir(tmp_path)
    code, stderr = run_nas(["refine", "tiny.json", "--target-latency", "0.01ms", "--step-fraction", "0.03", "--decay", "1",
                            "--short-tune", "2", "--long-tune", "3", "--pretrain", "6", "--resolution", "224",
                            "--storage", url, "--json"], monkeypatch, capsys)
    # tiny cannot get to 10 us: it stops at the closest network, says why and exits non-zero
    assert code == EXIT_NOT_REACHED and "target not reached: no proposal reaches" in stderr
    after = _trials(store, study)
    assert after[:len(before)] == before  # nothing stored was redone or lost
    assert [r.proposal for r in after if r.iteration == 0] == ["start", "baseline"]
    assert sum(r.proposal == second[0].proposal and r.iteration == 2 for r in after) == 1  # the finished proposal was kept
    by_number = {r.number: r for r in after}
    final = next(r for r in after if r.proposal == "final")
    path, number = [], final.parent
    while number is not None:
        path.append(by_number[number])
        number = by_number[number].parent
    path.reverse()
    assert [r.iteration for r in path] == list(range(len(path))) and len(path) >= 3
    for parent, child in itertools.pairwise(path):  # each kept network is narrower than its parent, never wider
        old = widths(Genotype.from_arch_def(parent.arch_def, **parent.network))
        new = widths(Genotype.from_arch_def(child.arch_def, **child.network))
        assert all(new[k] <= old[k] for k in old) and any(new[k] < old[k] for k in old)
        assert child.latency_source == "lut"  # priced from its parent's measured latency (re-anchored each iteration)
    assert final.latency_source == "measured" and final.arch_def == path[-1].arch_def
    # the result is an ordinary stored trial: nas show reads it
    code, _ = run_nas(["show", str(final.number), "--study", study, "--storage", url], monkeypatch, capsys)
    assert code == 0


@pytest.fixture()
def tiny_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY.to_dict()))
    return "tiny.json"


@pytest.mark.parametrize("flags, message", [
    (["--target-latency", "10s"], "nothing to refine"),
    (["--target-latency", "5ms", "--resolution", "100"], "not divisible by the network's total stride 8"),
    (["--target-latency", "5"], "has no unit"),
    (["--target-latency", "5ms", "--select", "best"], "--select: unknown 'best'"),
    (["--target-latency", "5ms", "--decay", "1.5"], "--decay must be in (0, 1]"),
    (["--target-latency", "5ms", "--short-tune", "-1"], "--short-tune must be >= 0"),
    (["--target-latency", "5ms", "--start-latency", "0ms"], "--start-latency: '0ms' must be greater than zero"),
    (["--target-latency", "5ms", "--start-latency", "4ms"], "already runs in 4.00 ms"),
])
def test_bad_input_is_one_line_and_stores_nothing(tiny_file, tmp_path, flags, message, monkeypatch, capsys):
    code, stderr = run_nas(["refine", tiny_file, "--resolution", "64", *flags], monkeypatch, capsys)
    error = stderr.strip().splitlines()[-1]  # a progress bar may stand above it
    assert code == 2 and error.startswith("error: ") and message in error and "Traceback" not in stderr, stderr
    if (tmp_path / "nas.db").exists():
        assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'nas.db'}") == []


def test_unknown_or_failed_trials_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'nas.db'}")
    trial = study.ask()
    trial.set_user_attr("arch_def", TINY.arch_def)
    trial.set_user_attr("network", TINY.network())
    study.tell(trial, state=TrialState.FAIL)
    code, stderr = run_nas(["refine", "0", "--study", "s", "--target-latency", "5ms"], monkeypatch, capsys)
    assert code == 2 and "FAIL trial" in stderr
    code, stderr = run_nas(["refine", "7", "--study", "s", "--target-latency", "5ms"], monkeypatch, capsys)
    assert code == 2 and "has no trial 7" in stderr


def test_a_failed_proposal_is_stored_fail_with_why_and_the_refinement_goes_on(tmp_path, one_thread):
    """Proposals fine-tuned at an infinite learning rate diverge: each is a FAIL trial with its
    reason, and the refinement ends at the closest network instead of raising."""
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    config = RefineConfig(**{**FAST, "tune_lr": float("inf"), "long_tune": 0})
    result = refine(Architecture("tiny", TINY), config, store)
    tried = [r for r in _trials(store, result.study) if r.iteration == 1]
    assert tried and all(r.state == TrialState.FAIL.name for r in tried)
    assert all(r.fail_reason.startswith("TrainingDiverged: training diverged") for r in tried)
    assert not result.reached and result.reason.startswith("every proposal of iteration 1 failed")
    assert result.iterations == 0 and result.path[-1].proposal == "start"


def test_a_start_latency_the_caller_measured_anchors_the_refinement(tmp_path, one_thread):
    """A bench measures the start side by side with the result and sets the target on that figure;
    the refinement anchors on it throughout. On the known device tiny runs in a few milliseconds and
    a layer saves at most 0.1 ms: anchored on 50 ms, no proposal saves the 1.5 ms the first iteration
    asks for."""
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    config = RefineConfig(**{**FAST, "target_latency_ms": 48.0, "long_tune": 0, "start_latency_ms": 50.0})
    result = refine(Architecture("tiny", TINY), config, store, timer=KnownDevice())
    assert result.path[0].latency_ms == 50.0 and not result.reached
    assert StudyRecord.from_study(optuna.load_study(study_name=result.study, storage=store.optuna())).base_latency_ms == 50.0
    with pytest.raises(UsageError, match="already runs in 50.00 ms"):
        refine(Architecture("tiny", TINY), RefineConfig(**{**config.__dict__, "target_latency_ms": 60.0, "study": "b"}), store)
    with pytest.raises(UsageError, match="start's latency must be > 0"):
        RefineConfig(**{**FAST, "start_latency_ms": 0.0})


def test_a_start_latency_refine_measured_too_slow_is_corrected_by_a_faster_measurement(tmp_path, one_thread):
    """The start's latency stored when the study was made may have caught a slow moment; each
    iteration times the start again and anchors on the fastest. Here the stored figure is 50 ms
    (left by a run that was interrupted; on the known device tiny runs in a few milliseconds):
    resumed without a caller's figure, the first measurement corrects it and nothing needs cutting
    to meet 48 ms. Anchored on 50 ms, the run would end "not reached" (the test above)."""
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    slow = RefineConfig(**{**FAST, "target_latency_ms": 48.0, "long_tune": 0, "start_latency_ms": 50.0})

    def interrupt(phase: str, done: int, total: int) -> None:
        if phase.startswith("confirm iteration 0"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        refine(Architecture("tiny", TINY), slow, store, interrupt, timer=KnownDevice())
    result = refine(Architecture("tiny", TINY), replace(slow, start_latency_ms=None), store, timer=KnownDevice())
    fastest = network_ms(TINY, FAST["latency"].resolution)  # the known device's second round
    assert result.reached and result.iterations == 0
    assert result.start_latency_ms == result.end_latency_ms == pytest.approx(fastest)
