"""`nas report` draws the path of every refinement in the database: refinement studies written
trial by trial through the storage contract, as `nas refine` stores them, beside a search study."""

from __future__ import annotations

import json
import re

import optuna
import pytest

from inprocess import run_nas
from storage import REFINE_BASELINE, REFINE_FINAL, REFINE_START, Store, StudyRecord, TrialRecord, write_trial

TARGET_MS = 6.0
# per iteration, the proposals' (latency_ms, accuracy); the first of each is the one kept
ITERATIONS = [[(8.0, 0.90), (8.5, 0.93), (8.2, 0.80)], [(7.0, 0.88), (7.4, 0.70)], [(5.9, 0.86), (5.5, 0.60), (5.8, 0.50)]]


def _tell(study: optuna.Study, record: TrialRecord, state: optuna.trial.TrialState | None = None) -> int:
    trial = study.ask()
    write_trial(trial, **record.to_attrs())
    if state is None:
        study.tell(trial, record.accuracy)
    elif state != optuna.trial.TrialState.RUNNING:
        study.tell(trial, state=state)
    return trial.number


def _refinement(store: Store, name: str, iterations: list[list[tuple[float, float]]], finished: bool) -> list[float]:
    """A refinement's study; returns the kept path's latencies, the start first."""
    study = optuna.create_study(study_name=name, storage=store.optuna())
    StudyRecord(target_latency_ms=TARGET_MS, refine={"select": "ratio", "decay": 0.96}).write(study)
    start = _tell(study, TrialRecord(iteration=0, proposal=REFINE_START, latency_ms=10.0, accuracy=0.92))
    kept, path = start, [10.0]
    for i, proposals in enumerate(iterations, start=1):
        numbers = [_tell(study, TrialRecord(parent=kept, iteration=i, proposal=f"expand {i}.{j} 48->40",
                                            latency_ms=latency, accuracy=accuracy))
                   for j, (latency, accuracy) in enumerate(proposals)]
        _tell(study, TrialRecord(parent=kept, iteration=i, proposal="width 9.9 8->8"), optuna.trial.TrialState.FAIL)
        kept = numbers[0]
        path.append(proposals[0][0])
    if finished:
        _tell(study, TrialRecord(parent=start, iteration=0, proposal=REFINE_BASELINE, latency_ms=10.3, accuracy=0.95))
        _tell(study, TrialRecord(parent=kept, iteration=len(iterations), proposal=REFINE_FINAL, latency_ms=6.1, accuracy=0.91))
    else:
        path.pop()  # the last kept network is known to the study only once a later one inherits from it
        _tell(study, TrialRecord(parent=kept, iteration=len(iterations) + 1, proposal="expand 0.0 16->8"),
              optuna.trial.TrialState.RUNNING)
    return path


def _search(store: Store) -> None:
    study = optuna.create_study(study_name="search", storage=store.optuna(), direction="maximize")
    StudyRecord(space="tiny", target_latency_ms=TARGET_MS, reward="soft").write(study)
    for latency, accuracy in ((4.0, 0.8), (7.0, 0.9)):
        _tell(study, TrialRecord(latency_ms=latency, accuracy=accuracy))


def _report(url: str, tmp_path, monkeypatch, capsys) -> dict[str, dict]:
    monkeypatch.chdir(tmp_path)
    code, stderr = run_nas(["report", "--storage", url, "--study", "search", "-o", "report.html"], monkeypatch, capsys)
    assert code == 0, stderr
    found = re.findall(r'<script type="application/json" id="figure-([^"]+)">(.*?)</script>',
                       (tmp_path / "report.html").read_text(), flags=re.S)
    return {name: json.loads(text) for name, text in found}


def _traces(figure: dict) -> dict[str, dict]:
    return {trace["name"].split(" (")[0]: trace for trace in figure["data"]}


def test_report_draws_each_refinements_path(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    store = Store.open(url)
    _search(store)
    done_path = _refinement(store, "refine-tiny-6ms", ITERATIONS, finished=True)
    running_path = _refinement(store, "refine b/2", ITERATIONS[:2], finished=False)
    figures = _report(url, tmp_path, monkeypatch, capsys)
    assert set(figures) == {"accuracy_latency", "history", "path-refine-tiny-6ms", "path-refine-b-2"}

    traces = _traces(figures["path-refine-tiny-6ms"])
    path = traces["kept path"]
    assert len(path["x"]) == len(done_path) == 4 and path["x"] == done_path
    assert path["text"] == ["0", "1", "2", "3"] and path["y"][0] == pytest.approx(92.0)
    assert len(traces["proposals"]["x"]) == sum(map(len, ITERATIONS))  # every proposal, FAIL ones left out
    assert traces["start"]["x"] == [10.0]
    assert traces["final, long-tuned and measured"]["x"] == [6.1]
    assert traces["start, long-tuned and measured"]["x"] == [10.3]
    assert [shape["x0"] for shape in figures["path-refine-tiny-6ms"]["layout"]["shapes"]] == [TARGET_MS]

    traces = _traces(figures["path-refine-b-2"])
    assert traces["kept path"]["x"] == running_path and len(running_path) == 2
    assert "final, long-tuned and measured" not in traces
    assert "stopped before its result" in figures["path-refine-b-2"]["layout"]["title"]["text"]


def test_report_without_refinements_has_no_path(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    _search(Store.open(url))
    assert set(_report(url, tmp_path, monkeypatch, capsys)) == {"accuracy_latency", "history"}
