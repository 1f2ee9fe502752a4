"""`nas report` on a search (deterministic estimators: known accuracies and latencies) with baselines, a validated latency model and a scaled family
stored beside it: the figures' data is read back from the file's embedded plotly JSON."""

from __future__ import annotations

import base64
import json
import re


import numpy as np
import pytest

from fakes import BlockLatency, WidthAccuracy
from inprocess import run_nas

from nas import SearchConfig, run_search
from nas.results import load_study
from storage import Store, TrialRecord, add_run
from storage import latency as latency_store

BASELINES = [  # name, dataset, accuracy, latency_ms
    ("mobilenetv2_100", "digits", 0.93, 3.1), ("resnet18", "digits", 0.95, 7.4), ("efficientnet_b0", "imagenet", 0.77, 9.0),
]
FAMILY = [(0, 1.5, 0.2e9), (1, 2.4, 0.4e9), (2, 3.9, 0.8e9)]  # phi, latency_ms, macs
VALIDATION = [(0.50, 0.52, 0.01), (0.80, 0.78, 0.02), (1.20, 1.31, 0.02)]  # predicted, measured, spread


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> str:
    """A three-trial search, its target moved to the middle trial's latency so that one trial
    is over it, and runs stored beside it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'nas.db'}"
    store = Store.open(url)
    run_search(SearchConfig(space="tiny", target_latency_ms=1.0, trials=3, study="rep", seed=4), store,
               accuracy=WidthAccuracy(), latency=BlockLatency())
    study = load_study(store, "rep")
    latencies = sorted(TrialRecord.from_trial(t).latency_ms for t in study.trials)
    assert len(set(latencies)) == 3, "the seed must give three networks of different depth"
    study.set_user_attr("target_latency_ms", latencies[1])
    for name, dataset, accuracy, latency_ms in BASELINES:
        add_run(store, kind="baseline", name=name, architecture={}, dataset=dataset, accuracy=accuracy,
                latency_ms=latency_ms, params=3_000_000, macs=300_000_000)
    for phi, latency_ms, macs in FAMILY:
        add_run(store, kind="scale", name=f"tiny@phi={phi}", architecture={}, latency_ms=latency_ms, macs=int(macs),
                accuracy=None, settings={"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "phi": phi})
    table = latency_store.get_or_create_table(store, {"cpu": "test", "threads": 1, "backend": "torch-cpu"})
    points = [{"arch_key": f"k{i}", "predicted_ms": p, "measured_ms": m, "spread_ms": s} for i, (p, m, s) in enumerate(VALIDATION)]
    latency_store.save_model(store, table, "tiny", validation={"points": points, "within_10pct": 2 / 3, "within_5pct": 2 / 3,
                                                             "rmse_ms": 0.065, "kendall_tau": 1.0})
    return url


def _decode(values):
    """Plotly's JSON holds numpy arrays as base64 typed arrays ({"dtype", "bdata", "shape"})."""
    if isinstance(values, dict) and "bdata" in values:
        array = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        return array.reshape([int(n) for n in values["shape"].split(",")]) if "shape" in values else array
    return np.asarray(values)


def _points(trace: dict) -> dict[int, tuple[float, float]]:
    """Trial number -> (latency, accuracy) of a trial cloud (the number is customdata's first column)."""
    x, y = _decode(trace["x"]), _decode(trace["y"])
    if not len(x):
        return {}
    return {int(n): (a, b) for n, a, b in zip(_decode(trace["customdata"])[:, 0], x, y, strict=True)}


def _embedded(page: str) -> dict[str, dict]:
    found = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, flags=re.S)
    return {name: json.loads(text) for name, text in found}


def _traces(figure: dict) -> dict[str, dict]:
    return {trace["name"].split(" (")[0]: trace for trace in figure["data"]}


@pytest.mark.slow  # renders PNGs in chromium
def test_report_draws_trials_front_target_baselines_and_stored_runs(study_db, nas_cli):
    trials = {t["number"]: t for t in nas_cli.json("trials", "--storage", study_db)["trials"]}
    made = nas_cli.json("report", "--storage", study_db, "-o", "out/report.html", "--png")
    page = (nas_cli.cwd / "out" / "report.html").read_text()
    assert "<script src" not in page and "<link" not in page  # plotly.js is inline: opens offline
    data = _embedded(page)
    assert set(made["figures"]) == {"accuracy_latency", "history", "latency_model", "scaling"}
    assert {f"figure-{name}" for name in made["figures"]} | {"report-summary"} == set(data)
    summary = data["report-summary"]
    target = sorted(t["latency_ms"] for t in trials.values())[1]
    assert summary["study"] == "rep" and summary["trials"] == 3 and summary["target_latency_ms"] == target
    assert summary["baselines"] == ["mobilenetv2_100", "resnet18"] and summary["baselines_on_other_datasets"] == 1

    traces = _traces(data["figure-accuracy_latency"])
    grey, coloured = traces["over target"], traces["meets target"]
    drawn = {**_points(grey), **_points(coloured)}
    assert set(drawn) == {n for n, t in trials.items() if t["state"] == "COMPLETE"} == {0, 1, 2}
    for number, (x, y) in drawn.items():
        assert x == pytest.approx(trials[number]["latency_ms"]) and y == pytest.approx(100 * trials[number]["accuracy"])
    slowest = max(trials, key=lambda n: trials[n]["latency_ms"])
    assert set(_points(grey)) == {slowest} and set(_points(coloured)) == {0, 1, 2} - {slowest}
    front = set(re.findall(r"\d+", " ".join(traces["Pareto front"]["text"])))
    dominated = {n for n in drawn for m in drawn if m != n and drawn[m][0] <= drawn[n][0] and drawn[m][1] > drawn[n][1]}
    assert {int(n) for n in front} == set(drawn) - dominated
    assert traces["seed networks"]["text"] == ["tiny skeleton"]
    baselines = traces["baselines"]
    assert baselines["text"] == ["mobilenetv2_100", "resnet18"] and list(_decode(baselines["x"])) == [3.1, 7.4]
    assert [s["x0"] for s in data["figure-accuracy_latency"]["layout"]["shapes"]] == [target]

    history = _traces(data["figure-history"])
    values = [trials[n]["reward"] for n in sorted(drawn)]
    assert list(_decode(history["best so far"]["y"])) == pytest.approx(list(np.maximum.accumulate(values)))

    [model] = [t for t in data["figure-latency_model"]["data"] if t["name"].startswith("tiny on")]
    assert list(_decode(model["x"])) == [p for p, _, _ in VALIDATION] and list(_decode(model["y"])) == [m for _, m, _ in VALIDATION]
    assert "67% within ±10%" in model["name"]
    [path] = data["figure-scaling"]["data"]
    assert path["text"] == ["φ=0", "φ=1", "φ=2"] and list(_decode(path["y"])) == [1.5, 2.4, 3.9]

    assert [p.rsplit("/", 1)[-1] for p in made["pngs"]] == [f"report-{name}.png" for name in made["figures"]]
    for png in made["pngs"]:
        assert (nas_cli.cwd / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # a browser
def test_report_opens_offline_in_chromium(study_db, nas_cli):
    from playwright.sync_api import sync_playwright

    made = nas_cli.json("report", "--storage", study_db)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        context = browser.new_context(offline=True)
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((nas_cli.cwd / made["output"]).as_uri())
        page.wait_for_function(f"document.querySelectorAll('.plot-container').length == {len(made['figures'])}")
        assert page.locator("div.figure .legendtext", has_text="Pareto front").count() == 1
        browser.close()
    assert errors == []


def test_report_of_a_missing_study_is_one_line(study_db, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, stderr = run_nas(["report", "--storage", study_db, "--study", "nope"], monkeypatch, capsys)
    assert code == 2 and stderr.strip().splitlines() == [f"error: no study named 'nope' in {study_db}; studies there: rep"]
    assert not (tmp_path / "report.html").exists()
