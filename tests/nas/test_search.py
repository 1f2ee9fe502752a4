"""Real searches on the `tiny` space: real SQLite/PostgreSQL, real timm models, real latency."""

import os
import signal
import sqlite3
import subprocess

import optuna
import pytest

from nas import LatencySettings, ProxySettings, SearchConfig, run_search
from nas.data import load_proxy_data
from nas.errors import StudyError
from nas.results import load_study, record_genotype
from search_spaces import Genotype, build_model
from storage import Store, StudyRecord, TrialRecord

from conftest import NAS, ONE_WORKER, progressive_images, wait_for

FAST = dict(space="tiny", target_latency_ms=2.0, proxy=ProxySettings(epochs=1),
            latency=LatencySettings(warmup=2, repeats=5))

DIGITS = load_proxy_data("digits", 16)


def _config(**changes):
    return SearchConfig(**{**FAST, **changes})


pytestmark = pytest.mark.slow  # real proxy training, real latency, real CLI processes


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nas.db'}"
    return request.getfixturevalue("postgres_url")


def test_storage_contract_on_every_backend(storage_url):
    config = _config(trials=2, study=f"contract-{os.getpid()}-{id(storage_url)}", seed_archs=("mobilenetv3_small_100",))
    store = Store.open(storage_url)
    result = run_search(config, store)
    study = load_study(store, config.study_name)
    settings = StudyRecord.from_study(study)
    assert settings.space == "tiny" and settings.target_latency_ms == 2.0 and settings.reward == "soft"
    assert settings.dataset == "digits" and settings.estimator["name"] == "train"
    assert settings.device["threads"] == 1 and settings.device["resolution"] == 224
    assert result.ran == 2 and result.counts == {"COMPLETE": 2}
    held_out = progressive_images(len(DIGITS.x_train), config.proxy.batch_size)  # images scored before their step
    for trial in study.trials:
        record = TrialRecord.from_trial(trial)
        assert record.params == sum(p.numel() for p in build_model(record_genotype(record)).parameters())
        assert record.accuracy * held_out == pytest.approx(round(record.accuracy * held_out))
        assert record.latency_source == "measured" and isinstance(record.latency_ms, float) and record.macs > 0
        assert record.latency_spread_ms >= 0 and record.device == settings.device and record.estimator == "train"
        assert trial.value == pytest.approx(config.reward_fn(record.accuracy, record.latency_ms))
    assert TrialRecord.from_trial(study.trials[0]).warm_start == "tiny"  # the skeleton network comes first
    assert TrialRecord.from_trial(study.trials[1]).seed_arch == "mobilenetv3_small_100"


def test_diverging_trials_are_stored_as_fail_and_the_search_goes_on(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    result = run_search(_config(trials=2, proxy=ProxySettings(epochs=1, lr=float("inf"))), store)
    assert result.counts == {"FAIL": 2}
    for trial in load_study(store, None).trials:
        record = TrialRecord.from_trial(trial)
        assert trial.state == optuna.trial.TrialState.FAIL
        assert "diverged" in record.fail_reason
        assert record.latency_ms > 0  # what was measured before the failure is kept


def test_a_resumed_study_must_keep_its_settings(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    run_search(_config(trials=1, study="s"), store)
    with pytest.raises(StudyError, match="target_latency_ms"):
        run_search(_config(trials=2, study="s", target_latency_ms=3.0), store)
    assert len(load_study(store, "s").trials) == 1


def test_pareto_search_marks_infeasible_trials(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    run_search(_config(trials=3, objective="pareto", target_latency_ms=0.001), store)
    study = load_study(store, None)
    assert len(study.directions) == 2 and study.metric_names == ["accuracy", "latency_ms"]
    for trial in study.trials:
        assert trial.values[1] == pytest.approx(TrialRecord.from_trial(trial).latency_ms)
        assert trial.system_attrs["constraints:latency_ms"] > 0  # 1 us target: every trial infeasible


def test_cli_search_writes_sqlite_and_resumes(nas_cli):
    args = ["search", "--space", "tiny", "--target-latency", "2ms", "--epochs", "1", "--seed", "3", *ONE_WORKER]
    first = nas_cli(*args, "--trials", "2", "--seed-arch", "mobilenetv3_small_100", "--json")
    db = nas_cli.cwd / "nas.db"
    assert db.exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from trials").fetchone()[0] == 2
    assert '"ran": 2' in first.stdout
    resumed = nas_cli(*args, "--trials", "4", "--seed-arch", "mobilenetv3_small_100")
    assert "how well 'train' ranks networks is not measured here" in resumed.stdout  # no reference in this database
    listing = nas_cli.json("trials")
    assert [t["number"] for t in listing["trials"]] == [0, 1, 2, 3]
    assert [t["seed_arch"] for t in listing["trials"]].count("mobilenetv3_small_100") == 1
    again = nas_cli(*args, "--trials", "4")
    assert "already holds 4 finished trials" in again.stdout
    assert len(nas_cli.json("trials")["trials"]) == 4


def test_cli_best_rescoring_and_show(nas_cli):
    nas_cli("search", "--space", "tiny", "--target-latency", "2ms", "--epochs", "1", "--trials", "3", *ONE_WORKER)
    trials = {t["number"]: t for t in nas_cli.json("trials")["trials"]}
    best = nas_cli.json("best", "--top", "3", "--target-latency", "0.5ms", "--reward", "hard")
    assert best["target_latency_ms"] == 0.5
    for entry in best["best"]:
        stored = trials[entry["number"]]
        assert entry["reward"] == pytest.approx(stored["accuracy"] * min(1.0, 0.5 / stored["latency_ms"]))
    assert [e["reward"] for e in best["best"]] == sorted((e["reward"] for e in best["best"]), reverse=True)
    shown = nas_cli.json("show", str(best["best"][0]["number"]))
    assert shown["arch_def"] == trials[best["best"][0]["number"]]["arch_def"]
    assert shown["params"] == trials[best["best"][0]["number"]]["params"]
    assert shown["macs"] == trials[best["best"][0]["number"]]["macs"]
    (nas_cli.cwd / "arch.json").write_text(Genotype.from_dict(shown).to_json())
    assert nas_cli.json("show", "arch.json")["params"] == shown["params"]
    assert nas_cli.json("show", "mobilenetv2_100")["params"] == 3504872


def test_kill_9_loses_no_completed_trial_and_the_same_command_resumes(nas_cli, spawn):
    args = [*NAS, "search", "--space", "tiny", "--target-latency", "2ms", "--epochs", "3", "--trials", "6", *ONE_WORKER]
    proc = spawn(args, cwd=nas_cli.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = nas_cli.cwd / "nas.db"

    def completed() -> int:
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(db) as conn:
                return conn.execute("select count(*) from trials where state='COMPLETE'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    wait_for(lambda: completed() >= 2, timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = completed()
    assert kept >= 2
    nas_cli(*args[3:])
    states = [t["state"] for t in nas_cli.json("trials")["trials"]]
    assert states.count("COMPLETE") >= kept
    assert sum(s in ("COMPLETE", "PRUNED", "FAIL") for s in states) >= 6


@pytest.mark.parametrize("args, message", [
    (["--target-latency", "20"], "has no unit"),
    (["--target-latency", "-5ms"], "greater than zero"),
    (["--target-latency", "0ms"], "greater than zero"),
    (["--target-latency", "abc"], "not a number"),
    (["--target-latency", "5ms", "--space", "nope"], "valid spaces: mbconv, mbconv-conv, mbconv-fused, mbconv-shared, tiny"),
    (["--target-latency", "5ms", "--data", "missing"], "does not exist"),
    (["--target-latency", "5ms", "--data", "empty"], "no images found"),
    (["--target-latency", "5ms", "--seed-arch", "resnet9000"], "known: mobilenetv1_100"),
])
def test_bad_input_gets_one_line_and_exit_2(nas_cli, args, message):
    (nas_cli.cwd / "empty").mkdir()
    (nas_cli.cwd / "notes.txt").write_text("keep me")
    proc = nas_cli("search", "--space", "tiny", *args, check=False) if "--space" not in args else \
        nas_cli("search", *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (nas_cli.cwd / "notes.txt").read_text() == "keep me"


def test_ctrl_c_stores_the_trial_as_interrupted_and_the_resume_runs_it_again(nas_cli, spawn):
    base = ["search", "--space", "tiny", "--target-latency", "2ms", "--trials", "1", *ONE_WORKER]
    proc = spawn([*NAS, *base, "--epochs", "60"], cwd=nas_cli.cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    db = nas_cli.cwd / "nas.db"

    def training() -> bool:  # latency stored: the trial is in its proxy training
        try:
            with sqlite3.connect(db) as conn:
                return conn.execute("select count(*) from trial_user_attributes where key='latency_ms'").fetchone()[0] > 0
        except sqlite3.OperationalError:
            return False

    wait_for(lambda: db.exists() and training(), timeout=300)  # generous: other slow tests may leave the two cores busy
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "run the same command to resume" in err and "Traceback" not in err
    first = nas_cli.json("trials")["trials"]
    assert [(t["state"], t["fail_reason"]) for t in first] == [("FAIL", "interrupted"), ("WAITING", None)]
    nas_cli(*base, "--epochs", "1")
    final = nas_cli.json("trials")["trials"]
    assert [t["state"] for t in final] == ["FAIL", "COMPLETE"]  # the interrupted one is not counted
    assert final[1]["arch_def"] == first[0]["arch_def"]  # ... and its architecture ran again
