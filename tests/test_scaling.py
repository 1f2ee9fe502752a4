"""Compound scaling: the grid, timm's rounding, released families, a resumed grid study, the CLI."""

import itertools
import json
import math
import signal
import sqlite3
import subprocess
from dataclasses import replace

import optuna
import pytest
import timm
import torch

from nas.errors import UsageError
from nas.results import CONTRACT_FIELDS, load_study
from nas.proxy import ProxySettings
from nas.scale import FamilyConfig, GridConfig, build_family, plan_grid, run_grid
from scaling import EFFICIENTNET_COEFFICIENTS, Coefficients, grid_points, scale, scale_genotype, tolerance_needed
from search_spaces import Genotype, build_model, seed_architecture
from storage import list_runs

from conftest import NAS, wait_for

TINY = {"format": "nas-architecture/1", "name": "tiny", "resolution": 64, "stem_size": 8, "num_features": 64,
        "arch_def": [["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16"], ["ir_r2_k3_s2_e3_c24"]], "act": "relu"}
# step 0.5, tolerance 0.3: exactly (2,1,1), (1,1.5,1) and (1,1,1.5) -- three tiny trainings
SMALL_GRID = ["--step", "0.5", "--tolerance", "0.3"]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _brute_force(step: float, tolerance: float, max_value: float) -> set[tuple[float, float, float]]:
    """Every triple of the grid, checked one by one (n^3), as the definition reads."""
    values = [1.0 + i * step for i in range(int(round((max_value - 1.0) / step)) + 1)]
    return {(round(a, 9), round(b, 9), round(g, 9)) for a, b, g in itertools.product(values, repeat=3)
            if abs(a * b * b * g * g - 2.0) <= tolerance + 1e-9}


@pytest.mark.parametrize("step, tolerance, max_value", [
    (0.05, 0.05, 2.0), (0.1, 0.05, 2.0), (0.05, 0.1, 2.0), (0.1, 0.01, 1.5), (0.025, 0.02, 1.6), (0.5, 0.25, 2.0),
])
def test_grid_points_satisfy_the_constraint_and_none_is_missing(step, tolerance, max_value):
    points = grid_points(step, tolerance, max_value)
    for p in points:
        assert 1.0 <= min(p.alpha, p.beta, p.gamma) and max(p.alpha, p.beta, p.gamma) <= max_value + 1e-9
        assert abs(p.alpha * p.beta**2 * p.gamma**2 - 2.0) <= tolerance + 1e-9
    found = {(round(p.alpha, 9), round(p.beta, 9), round(p.gamma, 9)) for p in points}
    assert len(found) == len(points)  # no duplicates
    assert found == _brute_force(step, tolerance, max_value)


def test_grid_holds_the_papers_triple_and_an_empty_grid_names_a_wider_tolerance():
    assert Coefficients(1.2, 1.1, 1.15) in grid_points(0.05, 0.1, 2.0)  # 1.2 * 1.1^2 * 1.15^2 = 1.92
    assert Coefficients(1.2, 1.1, 1.15) not in grid_points(0.05, 0.05, 2.0)
    assert grid_points(0.5, 0.1, 1.5) == [] and tolerance_needed(0.5, 1.5) == 0.25
    assert len(grid_points(0.5, 0.25, 1.5)) == 2 and not grid_points(0.5, 0.249, 1.5)
    with pytest.raises(UsageError, match=r"within 0.1 of 2; --tolerance 0.25 gives 2$"):
        GridConfig(base="efficientnet_b0", step=0.5, tolerance=0.1, max_value=1.5)


@pytest.mark.parametrize("bad", [dict(alpha=0.99, beta=1.0, gamma=1.0), dict(alpha=1.0, beta=0.5, gamma=1.0),
                                 dict(alpha=1.0, beta=1.0, gamma=float("nan"))])
def test_coefficients_below_one_are_refused(bad):
    with pytest.raises(ValueError, match="must be >= 1"):
        Coefficients(**bad)
    with pytest.raises(ValueError, match="phi must be >= 0"):
        EFFICIENTNET_COEFFICIENTS.at(-1, 224)


def test_efficientnet_b1_to_b7_from_b0_are_timms(tmp_path):
    """The released family scaled from the b0 seed has exactly timm's parameter counts."""
    rows = build_family(FamilyConfig(base="efficientnet_b0", coefficients=None, family="efficientnet", measure=False,
                                     out_dir=tmp_path / "family", storage=f"sqlite:///{tmp_path / 'nas.db'}"))
    assert [r.resolution for r in rows] == [224, 240, 260, 300, 380, 456, 528, 600]
    for row in rows:
        with torch.device("meta"):
            expected = _params(timm.create_model(f"efficientnet_b{row.phi}", pretrained=False))
        assert row.params == expected, f"B{row.phi}"
    assert json.loads((tmp_path / "family" / "efficientnet_b0-phi4.json").read_text())["resolution"] == 380


@pytest.mark.parametrize("phi, width, depth", [(1, 1.0, 1.1), (2, 1.1, 1.2), (3, 1.2, 1.4), (4, 1.4, 1.8)])
def test_lite_networks_keep_stem_head_and_end_stages_as_timm_does(phi, width, depth):
    scaled = scale_genotype(seed_architecture("efficientnet_lite0"), depth=depth, width=width)
    with torch.device("meta"):
        assert _params(build_model(scaled)) == _params(timm.create_model(f"efficientnet_lite{phi}", pretrained=False))
    assert (scaled.stem_size, scaled.num_features) == (32, 1280)


def test_compound_rounding_follows_efficientnet():
    b0 = seed_architecture("efficientnet_b0")
    assert scale(b0, EFFICIENTNET_COEFFICIENTS.at(0, 224)) == b0  # phi = 0 is the base
    for phi in range(1, 5):
        member = EFFICIENTNET_COEFFICIENTS.at(phi, 224)
        scaled = scale(b0, member)
        assert member.resolution % 8 == 0 and abs(member.resolution - 224 * 1.15**phi) <= 4
        for old, new in zip(itertools.chain(*b0.stages), itertools.chain(*scaled.stages), strict=True):
            assert new.repeats == math.ceil(old.repeats * member.depth - 1e-9)
            assert new.out_chs % 8 == 0 and new.out_chs >= 0.9 * old.out_chs * member.width
            assert abs(new.out_chs - old.out_chs * member.width) <= 8
        assert scaled.num_features == 8 * round(1280 * member.width / 8)


def test_dry_run_plans_every_point_at_phi_1():
    base, resolution, points = plan_grid(GridConfig(base="efficientnet_b0", step=0.1))
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


def test_an_interrupted_grid_resumes_with_every_point_once(nas_cli):
    (nas_cli.cwd / "tiny.json").write_text(json.dumps(TINY))
    args = ["scale", "grid", "tiny.json", *SMALL_GRID, "--epochs", "2", "--proxy-resolution", "8"]
    proc = subprocess.Popen([*NAS, *args], cwd=nas_cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    url = f"sqlite:///{db}"
    study = load_study(url, "scale-tiny")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    labels = sorted(t.params["point"] for t in complete)
    assert labels == ["1,1,1.5", "1,1.5,1", "2,1,1"]  # every point once, none twice
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["fail_reason"] == "interrupted"
    assert result["ran"] == 2 and {p["state"] for p in result["points"]} == {"COMPLETE"}
    assert study.metric_names == ["reward"] and study.user_attrs["space"] == "scale-grid"
    assert study.user_attrs["target_latency_ms"] == pytest.approx(2 * study.user_attrs["base_latency_ms"])
    for trial in complete:
        attrs = trial.user_attrs
        assert set(CONTRACT_FIELDS) | {"network", "alpha", "beta", "gamma", "resolution"} <= set(attrs)
        genotype = Genotype.from_dict({"arch_def": attrs["arch_def"], **attrs["network"]})
        assert attrs["params"] == _params(build_model(genotype))
        assert attrs["resolution"] == 8 * round(64 * attrs["gamma"] / 8) == attrs["device"]["resolution"]
        assert trial.value == pytest.approx(attrs["accuracy"] * (attrs["latency_ms"] / result["target_latency_ms"]) ** -0.07)
    best = max(complete, key=lambda t: t.value)
    assert result["best_reward"]["label"] == best.params["point"]
    assert result["best_accuracy"]["accuracy"] == max(t.user_attrs["accuracy"] for t in complete)
    plot = nas_cli.cwd / "scale-tiny.html"
    assert nas_cli.cwd / result["plot"] == plot and plot.stat().st_size > 1_000_000  # plotly.js is inside
    assert "accuracy vs latency" in plot.read_text()
    again = run_grid(GridConfig(base=str(nas_cli.cwd / "tiny.json"), step=0.5, tolerance=0.3, storage=url,
                                proxy=ProxySettings(epochs=2, resolution=8)), plot_path=nas_cli.cwd / "again.html")
    assert again.ran == 0 and len(load_study(url, "scale-tiny").trials) == len(trials)
    assert again.best_reward == replace(again.best_reward, **{k: result["best_reward"][k] for k in ("trial", "reward")})


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
    runs = list_runs(f"sqlite:///{nas_cli.cwd / 'nas.db'}", kind="scale")
    assert [(r["name"], r["settings"]["phi"], r["settings"]["alpha"]) for r in runs] == [
        (f"tiny@phi={phi}", phi, 1.2) for phi in range(4)]
    assert runs[3]["architecture"]["arch_def"] == shown["arch_def"] and runs[3]["device"]["resolution"] == 96
    again = FamilyConfig(base=str(nas_cli.cwd / "tiny.json"), coefficients=EFFICIENTNET_COEFFICIENTS, phis=(0, 1, 2, 3),
                         measure=False, out_dir=tmp_path, storage=f"sqlite:///{nas_cli.cwd / 'nas.db'}")
    build_family(again)  # unmeasured members are new runs; the same members again are not stored twice
    build_family(again)
    assert len(list_runs(again.storage, kind="scale")) == 8


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
def test_bad_input_gets_one_line_and_exit_2(nas_cli, args, message):
    proc = nas_cli("scale", *args, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert not (nas_cli.cwd / "nas.db").exists() and not list(nas_cli.cwd.glob("family-*"))
