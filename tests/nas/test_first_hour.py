"""The commands people type dozens of times an hour: they start without torch, a Pareto study
answers with its front, and the closing hints name commands that work as nas was called."""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import typer.main

from fakes import BlockLatency, WidthAccuracy
from nas import SearchConfig, run_search
from nas.cli import main
from nas.cli.common import app, nas_command, open_hints
from storage import Store

HEAVY = ("torch", "timm", "onnx", "onnxruntime", "plotly", "optuna_dashboard")
TARGET_MS = 4.3  # the fakes give this front 3.7-4.6 ms on `tiny`: some members meet the target, one does not


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    """A folder whose nas.db holds a Pareto study ('front') and a reward study ('reward')."""
    folder = tmp_path_factory.mktemp("studies")
    store = Store.open(f"sqlite:///{folder / 'nas.db'}")
    for name, objective in (("front", "pareto"), ("reward", "reward")):
        config = SearchConfig(space="tiny", target_latency_ms=TARGET_MS, objective=objective, trials=16, study=name)
        run_search(config, store, accuracy=WidthAccuracy(), latency=BlockLatency())
    return folder


def _nas_json(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> dict:
    monkeypatch.setattr(sys, "argv", ["nas", *args, "--json"])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    assert exited.value.code in (0, None), captured.err
    return json.loads(captured.out)


_IMPORTS = """
import json, sys
from nas.cli import main
heavy = {heavy!r}
found = {{}}
for args in {commands!r}:
    sys.argv = ["nas", *args]
    try:
        main()
    except SystemExit as exited:
        assert exited.code in (0, None), (args, exited.code)
    found[" ".join(args)] = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
sys.stderr.write("IMPORTED " + json.dumps(found) + "\\n")
"""


def test_reading_commands_import_no_torch(studies):
    """Every command's --help, `nas spaces`, `nas trials` and `nas best` (a front and a ranking),
    run in turn in one fresh interpreter: after each, none of the heavy libraries is loaded."""
    names = list(typer.main.get_command(app).commands)
    commands = [["--help"], *([name, "--help"] for name in names), ["spaces"], ["trials", "--study", "reward"],
                ["trials", "--study", "front", "--json"], ["best", "--study", "reward"],
                ["best", "--study", "front", "--target-latency", "5ms"], ["best", "--study", "front", "--json"]]
    proc = subprocess.run([sys.executable, "-c", _IMPORTS.format(heavy=HEAVY, commands=commands)], cwd=studies,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stderr.rsplit("IMPORTED ", 1)[1])
    assert "search --help" in found and "dashboard --help" in found
    assert {command: modules for command, modules in found.items() if modules} == {}


def _dominates(a: dict, b: dict) -> bool:
    return (a["accuracy"] >= b["accuracy"] and a["latency_ms"] <= b["latency_ms"]
            and (a["accuracy"] > b["accuracy"] or a["latency_ms"] < b["latency_ms"]))


def test_a_pareto_studys_best_is_exactly_its_front(studies, monkeypatch, capsys):
    monkeypatch.chdir(studies)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    done = [t for t in _nas_json(["trials", "--study", "front"], monkeypatch, capsys)["trials"] if t["state"] == "COMPLETE"]
    best = _nas_json(["best", "--study", "front"], monkeypatch, capsys)
    assert best["pareto"] is True and "best" not in best and best["target_latency_ms"] == TARGET_MS
    front = best["front"]
    assert {m["number"] for m in front} == {t["number"] for t in done if not any(_dominates(o, t) for o in done)}
    assert len(front) == len({m["number"] for m in front}) and 1 < len(front) < len(done)
    assert [m["latency_ms"] for m in front] == sorted(m["latency_ms"] for m in front)
    # within the target, the front is Optuna's own (the study's latency constraint)
    study = optuna.load_study(study_name="front", storage=f"sqlite:///{studies / 'nas.db'}")
    assert {m["number"] for m in front if m["meets_target"]} == {t.number for t in study.best_trials}
    assert any(not m["meets_target"] for m in front)
    within = [t for t in done if t["latency_ms"] <= TARGET_MS]
    assert best["choice"] == max(within, key=lambda t: t["accuracy"])["number"]


def test_target_latency_picks_the_most_accurate_front_member_under_it(studies, monkeypatch, capsys):
    monkeypatch.chdir(studies)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    done = [t for t in _nas_json(["trials", "--study", "front"], monkeypatch, capsys)["trials"] if t["state"] == "COMPLETE"]
    for target_ms in sorted(t["latency_ms"] for t in done)[::4]:
        best = _nas_json(["best", "--study", "front", "--target-latency", f"{target_ms}ms"], monkeypatch, capsys)
        within = [t for t in done if t["latency_ms"] <= target_ms]
        assert best["choice"] == max(within, key=lambda t: (t["accuracy"], -t["latency_ms"]))["number"]
    too_fast = _nas_json(["best", "--study", "front", "--target-latency", "1us"], monkeypatch, capsys)
    assert too_fast["choice"] is None and not any(m["meets_target"] for m in too_fast["front"])


def test_a_reward_study_still_ranks(studies, monkeypatch, capsys):
    monkeypatch.chdir(studies)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    best = _nas_json(["best", "--study", "reward", "--top", "3"], monkeypatch, capsys)
    assert best["pareto"] is False and "front" not in best and len(best["best"]) == 3
    assert [e["reward"] for e in best["best"]] == sorted((e["reward"] for e in best["best"]), reverse=True)


def test_hints_repeat_how_nas_was_called(tmp_path, monkeypatch):
    script = tmp_path / ".venv" / "bin" / "nas"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [".venv/bin/nas", "search"])  # an unactivated venv, as the README calls it
    assert nas_command() == ".venv/bin/nas"
    dashboard, report = open_hints(None, "sqlite:///nas.db", "tiny-2ms-soft")
    assert dashboard.endswith(".venv/bin/nas dashboard")
    assert report.split() == [".venv/bin/nas", "report", "-o", "report.html", "--study", "tiny-2ms-soft"]
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")  # activated: the same program is found as `nas`
    monkeypatch.setattr(sys, "argv", [str(script), "search"])
    assert nas_command() == "nas"
    assert "--storage 'sqlite:///my db.db'" in open_hints("sqlite:///my db.db", "sqlite:///my db.db", "s")[0]
    monkeypatch.setattr(sys, "argv", [str(Path(main.__code__.co_filename).parent.parent / "__main__.py")])
    assert nas_command().endswith(" -m nas")


@pytest.mark.slow  # a real search: real timm models, real latency
def test_a_pareto_search_closes_with_its_front_and_the_nas_dashboard_hint(tmp_path):
    program = Path(sys.executable).with_name("nas")  # the console script `./setup.sh` installs
    proc = subprocess.run([str(program), "search", "--space", "tiny", "--target-latency", "2ms", "--trials", "3",
                           "--objective", "pareto", "--estimator", "params"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "NO_COLOR": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "accuracy-latency front, T = 2 ms" in proc.stdout and "best by" not in proc.stdout
    assert f"{program} dashboard" in proc.stdout and f"{program} report -o report.html" in proc.stdout
    assert "optuna-dashboard sqlite" not in proc.stdout
    assert f"{program} latency build --space tiny" in proc.stdout  # no table here: how to stop timing each candidate
