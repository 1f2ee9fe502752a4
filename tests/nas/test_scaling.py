"""Compound scaling: the grid, timm's rounding, released families, a resumed grid study, the CLI."""

import json
import signal
import sqlite3
import subprocess
from dataclasses import replace

import optuna
import pytest
import timm
import torch

from nas.results import load_study, record_genotype
from nas.errors import UsageError
from nas.proxy import ProxySettings
from nas.scale import FamilyConfig, GridConfig, build_family, plan_grid, run_grid
from scaling import EFFICIENTNET_COEFFICIENTS, Coefficients, grid_points, scale
from search_spaces import build_model
from storage import Store, StudyRecord, TrialRecord, list_runs

from conftest import NAS, wait_for
from inprocess import run_nas

TINY = {"format": "nas-architecture/1", "name": "tiny", "resolution": 64, "stem_size": 8, "num_features": 64,
        "arch_def": [["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16"], ["ir_r2_k3_s2_e3_c24"]], "act": "relu"}
# step 0.5, tolerance 0.3: exactly (2,1,1), (1,1.5,1) and (1,1,1.5) -- three tiny trainings
SMALL_GRID = ["--step", "0.5", "--tolerance", "0.3"]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_an_empty_grid_names_a_wider_tolerance():
    with pytest.raises(UsageError, match=r"within 0.1 of 2; --tolerance 0.25 gives 2$"):
        GridConfig(base="efficientnet_b0", step=0.5, tolerance=0.1, max_value=1.5)


def test_efficientnet_b1_to_b7_from_b0_are_timms(tmp_path):
    """The released family scaled from the b0 seed has exactly timm's parameter counts."""
    rows = build_family(FamilyConfig(base="efficientnet_b0", coefficients=None, family="efficientnet", measure=False,
                                     out_dir=tmp_path / "family"), Store.open(f"sqlite:///{tmp_path / 'nas.db'}"))
    assert [r.resolution for r in rows] == [224, 240, 260, 300, 380, 456, 528, 600]
    for row in rows:
        with torch.device("meta"):
            expected = _params(timm.create_model(f"efficientnet_b{row.phi}", pretrained=False))
        assert row.params == expected, f"B{row.phi}"
    assert json.loads((tmp_path / "family" / "efficientnet_b0-phi4.json").read_text())["resolution"] == 380


def test_dry_run_plans_every_point_at_phi_1(tmp_path):
    base, resolution, points = plan_grid(GridConfig(base="efficientnet_b0", step=0.1),
                                         Store.open(f"sqlite:///{tmp_path / 'nas.db'}"))
    assert base.name == "efficientnet_b0" and resolution == 224
    assert [p.label for p in points] == [c.label() for c in grid_points(0.1, 0.05, 2.0)]
    for p in points:
        genotype = scale(base.genotype, Coefficients(p.alpha, p.beta, p.gamma).at(1, 224))
        assert (p.blocks, p.num_features, p.resolution % 8) == (genotype.depth, genotype.num_features, 0)
    assert min(p.macs for p in points) > 1.8 * 385_000_000  # each point about doubles B0's MACs


def _grid_trials(db) -> list[tuple[str, str | None]]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select t.state, a.value_json from trials t left join trial_user_attributes a "
                                "on a.trial_id = t.trial_id and a.key = 'latency_ms'").fetchall()
    except sqlite3.OperationalError:
        return []


@pytest.mark.slow  # real proxy training and latency in a CLI process, interrupted
def test_an_interrupted_grid_resumes_with_every_point_once(nas_cli, spawn):
    (nas_cli.cwd / "tiny.json").write_text(json.dumps(TINY))
    args = ["scale", "grid", "tiny.json", *SMALL_GRID, "--epochs", "2", "--proxy-resolution", "8"]
    proc = spawn([*NAS, *args], cwd=nas_cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = nas_cli.cwd / "nas.db"

    def training_after_one_complete() -> bool:
        rows = _grid_trials(db)
        return any(s == "COMPLETE" for s, _ in rows) and any(s == "RUNNING" and lat for s, lat in rows)

    wait_for(training_after_one_complete, timeout=300, interval=0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command to resume" in err and "Traceback" not in err
    first = [(s, json.loads(lat) if lat else None) for s, lat in _grid_trials(db)]
    assert sorted(s for s, _ in first) == ["COMPLETE", "FAIL"]

    result = json.loads(nas_cli(*args, "--json").stdout)
    store = Store.open(f"sqlite:///{db}")
    study = load_study(store, "scale-tiny")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    labels = sorted(t.params["point"] for t in complete)
    assert labels == ["1,1,1.5", "1,1.5,1", "2,1,1"]  # every point once, none twice
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and TrialRecord.from_trial(failed[0]).fail_reason == "interrupted"
    assert result["ran"] == 2 and {p["state"] for p in result["points"]} == {"COMPLETE"}
    settings = StudyRecord.from_study(study)
    assert study.metric_names == ["reward"] and settings.space == "scale-grid"
    assert settings.target_latency_ms == pytest.approx(2 * settings.base_latency_ms)
    for trial in complete:
        record = TrialRecord.from_trial(trial)
        assert None not in (record.arch_def, record.network, record.alpha, record.beta, record.gamma, record.resolution,
                            record.latency_ms, record.latency_spread_ms, record.accuracy, record.macs, record.device)
        assert record.params == _params(build_model(record_genotype(record)))
        assert record.resolution == 8 * round(64 * record.gamma / 8) == record.device["resolution"]
        assert trial.value == pytest.approx(record.accuracy * (record.latency_ms / result["target_latency_ms"]) ** -0.07)
    best = max(complete, key=lambda t: t.value)
    assert result["best_reward"]["label"] == best.params["point"]
    assert result["best_accuracy"]["accuracy"] == max(TrialRecord.from_trial(t).accuracy for t in complete)
    plot = nas_cli.cwd / "scale-tiny.html"
    assert nas_cli.cwd / result["plot"] == plot and plot.stat().st_size > 1_000_000  # plotly.js is inside
    assert "accuracy vs latency" in plot.read_text()
    again = run_grid(GridConfig(base=str(nas_cli.cwd / "tiny.json"), step=0.5, tolerance=0.3,
                                proxy=ProxySettings(epochs=2, resolution=8)), store, plot_path=nas_cli.cwd / "again.html")
    assert again.ran == 0 and len(load_study(store, "scale-tiny").trials) == len(trials)
    assert again.best_reward == replace(again.best_reward, **{k: result["best_reward"][k] for k in ("trial", "reward")})


@pytest.mark.slow  # CLI processes measuring real latency
def test_family_files_show_back_and_runs_are_stored_once(nas_cli, tmp_path):
    (nas_cli.cwd / "tiny.json").write_text(json.dumps(TINY))
    args = ["scale", "family", "tiny.json", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "0..3"]
    rows = nas_cli.json(*args)
    assert [r["phi"] for r in rows] == [0, 1, 2, 3] and rows[0]["macs_ratio"] == 1.0
    assert [r["resolution"] for r in rows] == [64, 72, 88, 96]  # 64 * 1.15^phi to a multiple of 8
    assert all(r["latency_ms"] > 0 for r in rows) and rows[3]["macs"] > rows[2]["macs"] > rows[1]["macs"]
    shown = nas_cli.json("show", rows[3]["path"])
    assert (shown["params"], shown["macs"], shown["resolution"]) == (rows[3]["params"], rows[3]["macs"], 96)
    scaled = nas_cli.json("scale", "show", "tiny.json", "--phi", "3")  # EfficientNet's coefficients by default
    assert scaled["arch_def"] == shown["arch_def"] and scaled["name"] == "tiny@phi=3"
    store = Store.open(f"sqlite:///{nas_cli.cwd / 'nas.db'}")
    runs = list_runs(store, kind="scale")
    assert [(r.name, r.settings["phi"], r.settings["alpha"]) for r in runs] == [
        (f"tiny@phi={phi}", phi, 1.2) for phi in range(4)]
    assert runs[3].architecture["arch_def"] == shown["arch_def"] and runs[3].device["resolution"] == 96
    again = FamilyConfig(base=str(nas_cli.cwd / "tiny.json"), coefficients=EFFICIENTNET_COEFFICIENTS, phis=(0, 1, 2, 3),
                         measure=False, out_dir=tmp_path)
    build_family(again, store)  # unmeasured members are new runs; the same members again are not stored twice
    build_family(again, store)
    assert len(list_runs(store, kind="scale")) == 8


@pytest.mark.parametrize("args, message", [
    (["family", "efficientnet_b0", "--alpha", "0.9", "--no-measure"], "--alpha: alpha must be >= 1"),
    (["family", "efficientnet_b0", "--phi", "-1..3", "--no-measure"], "--phi must be >= 0"),
    (["family", "efficientnet_b0", "--family", "efficientnet", "--phi", "3..9"], "has phi 0..7, not 8"),
    (["family", "efficientnet_b0", "--family", "efficientnet", "--gamma", "1.2"], "not both"),
    (["show", "efficientnet_b0", "--phi", "-2"], "--phi must be >= 0"),
    (["show", "efficientnet_b0", "--phi", "1", "--family", "resnet"], "known: efficientnet"),
    (["grid", "efficientnet_b0", "--step", "0.5", "--tolerance", "0.1", "--max", "1.5", "--dry-run"],
     "--tolerance 0.25 gives 2"),
    (["grid", "resnet9000", "--dry-run"], "not a known architecture"),
])
def test_bad_input_gets_one_line_and_exit_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, stderr = run_nas(["scale", *args], monkeypatch, capsys)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert not (tmp_path / "nas.db").exists() and not list(tmp_path.glob("family-*"))
