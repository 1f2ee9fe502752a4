"""optuna-dashboard on nas's database: the grouped note lookups against stock optuna-dashboard
(in-process WSGI, threads), then a real `nas search` study through the WSGI app and through
`nas dashboard` in headless Chromium (Debian's package, driven by Playwright; no browser download)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import _note, _serializer, save_note

from conftest import NAS, ONE_WORKER, free_port, wait_for
from dashboards import attr_index
from dashboards.server import dashboard_app
from nas.cli import main
from nas.notes import artifact_dir
from nas.results import load_study
from storage import Store, TrialRecord

CHROMIUM = Path("/usr/bin/chromium")
SEARCH = ["search", "--space", "tiny", "--target-latency", "2ms", "--trials", "3", "--epochs", "1",
          "--proxy-resolution", "16", "--resolution", "64", *ONE_WORKER]


def _wsgi_get(app, path: str) -> tuple[str, bytes]:
    environ = {"PATH_INFO": path.split("?")[0], "QUERY_STRING": path.partition("?")[2]}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    return status[0], body


@pytest.fixture()
def noted(tmp_path) -> tuple[Store, Path, str]:
    """A study with long (multi-chunk) notes, a trial without one, and both kinds of trial artifact;
    no training. Returns the store, the artifact folder and the study's API path."""
    store = Store.open(f"sqlite:///{tmp_path / 'nas.db'}")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    study = optuna.create_study(storage=store.optuna(), study_name="noted")
    (tmp_path / "file.txt").write_text("an artifact")
    for number in range(6):
        trial = study.ask()
        if number != 4:
            save_note(trial, f"### Trial {number}\n" + "note " * 1000 * (number % 3))  # notes split at 2045 characters
        if number == 2:
            upload_artifact(artifact_store=FileSystemArtifactStore(artifacts), file_path=str(tmp_path / "file.txt"),
                            study_or_trial=trial)
        study.tell(trial, float(number))
    first = study.get_trials(deepcopy=False)[0]
    meta = {"artifact_id": "0000-ui", "filename": "ui.txt", "mimetype": "text/plain", "encoding": None}
    study._storage.set_study_system_attr(study._study_id, f"dashboard:artifacts:{first._trial_id}:0000-ui", json.dumps(meta))
    return store, artifacts, f"/api/studies/{study._study_id}"


def test_grouped_lookups_serve_exactly_what_optuna_dashboard_serves(noted):
    store, artifacts, path = noted
    stock = json.loads(_wsgi_get(dashboard_app(store, artifacts, indexed=False), path)[1])
    grouped = json.loads(_wsgi_get(dashboard_app(store, artifacts), path)[1])
    assert grouped == stock
    trials = grouped["trials"]
    assert [t["note"]["body"].startswith(f"### Trial {t['number']}") for t in trials] == [True] * 4 + [False, True]
    assert len(trials[2]["note"]["body"]) > 10_000 and trials[4]["note"] == {"version": 0, "body": ""}
    assert [a["filename"] for a in trials[0]["artifacts"]] == ["ui.txt"]  # kept in the study's attributes
    assert [a["filename"] for a in trials[2]["artifacts"]] == ["file.txt"]  # optuna.artifacts, in the trial's


def test_concurrent_indexed_and_plain_requests_all_serve_the_stock_answer(noted):
    store, artifacts, path = noted
    apps = [dashboard_app(store, artifacts, indexed=False), dashboard_app(store, artifacts)]
    stock = _wsgi_get(apps[0], path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: _wsgi_get(apps[i % 2], path), range(32)))
    assert all(answer == stock for answer in answers)


@pytest.mark.slow
def test_a_served_dashboard_answers_concurrent_requests_as_stock_optuna_dashboard(noted, spawn):
    """`nas dashboard`'s threaded server on 127.0.0.1, many requests in flight at once from eight threads."""
    store, _, path = noted
    stock = json.loads(_wsgi_get(dashboard_app(store, artifact_dir(store.url), indexed=False), path)[1])
    port = free_port()
    server = spawn([*NAS, "dashboard", "--storage", store.url, "--port", str(port), "--json"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}{path}"

    def get(_: int) -> dict:
        with urllib.request.urlopen(url, timeout=60) as response:
            return json.loads(response.read())

    def answers() -> bool:
        try:
            return bool(get(0))
        except OSError:
            return server.poll() is not None

    wait_for(answers, timeout=60)
    assert server.poll() is None, server.stderr.read()
    with ThreadPoolExecutor(max_workers=8) as pool:
        served = list(pool.map(get, range(48)))
    assert all(answer == stock for answer in served)
    server.send_signal(signal.SIGINT)
    server.communicate(timeout=30)
    assert server.returncode == 0


def test_a_request_that_ends_leaves_another_in_flight_indexed():
    def another_request() -> None:
        with attr_index.indexed_request():
            pass

    attr_index.install()
    with attr_index.indexed_request():
        other = threading.Thread(target=another_request)
        other.start()
        other.join()
        assert _note.get_note_from_system_attrs is attr_index.get_note_from_system_attrs
        assert _serializer.list_trial_artifacts is attr_index.list_trial_artifacts
        attrs = {_note.note_ver_key(7): 1, "dashboard:7:note_str:0": "body"}
        assert _note.get_note_from_system_attrs(attrs, 7) == {"version": 1, "body": "body"}


def test_another_host_is_served_only_with_a_warning(tmp_path, monkeypatch, capsys):
    # 192.0.2.1 (TEST-NET-1) is on no interface: the warning is printed, then binding fails in one line
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    Store.open(f"sqlite:///{tmp_path / 'nas.db'}").optuna()  # the dashboard reads a database, never creates one
    monkeypatch.setattr(sys, "argv", ["nas", "dashboard", "--host", "192.0.2.1", "--allow-remote", "--port", str(free_port())])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert exited.value.code == 2 and "no authentication" in stderr
    assert lines[0].startswith("warning: serving on 192.0.2.1") and lines[-1].startswith("error: cannot listen on 192.0.2.1")


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Store:
    """One real three-trial search into a real SQLite file, shared by the slow tests below."""
    cwd = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{cwd / 'nas.db'}"
    subprocess.run([*NAS, *SEARCH, "--storage", url, "--json"], cwd=cwd, check=True, capture_output=True, timeout=300)
    return Store.open(url)


@pytest.mark.slow
def test_every_trial_has_a_note_and_its_architecture_through_the_wsgi_app(searched):
    study = load_study(searched, None)
    app = dashboard_app(searched, artifact_dir(searched.url))
    status, body = _wsgi_get(app, "/api/studies")
    assert status.startswith("200")
    [summary] = json.loads(body)["study_summaries"]
    assert summary["study_name"] == study.study_name
    status, body = _wsgi_get(app, f"/api/studies/{summary['study_id']}")
    detail = json.loads(body)
    assert detail["objective_names"] == ["reward"]  # what the dashboard labels its axes with
    assert len(detail["trials"]) == 3 and all(len(t["artifacts"]) == 1 for t in detail["trials"])
    for served, stored in zip(detail["trials"], study.trials, strict=True):
        note = served["note"]["body"]
        record = TrialRecord.from_trial(stored)
        assert note.startswith(f"### Trial {stored.number}: COMPLETE")
        assert f"{record.latency_ms:.3f} ms ± {record.latency_spread_ms:.3f}" in note and "64 px, batch 1" in note
        assert all(f"`{block}`" in note for stage in record.arch_def for block in stage)
        [link] = [line for line in note.splitlines() if line.startswith("- [architecture.json]")]
        status, file = _wsgi_get(app, link[link.index("](") + 2:-1])
        assert status.startswith("200")
        architecture = json.loads(file)
        assert architecture["arch_def"] == record.arch_def
        assert architecture["name"] == f"{study.study_name}/{stored.number}" and architecture["resolution"] == 64
        assert architecture["provenance"]["latency_ms"] == record.latency_ms


@pytest.mark.slow
def test_nas_dashboard_shows_the_study_and_a_note_in_chromium(searched, spawn):
    from playwright.sync_api import sync_playwright

    study = load_study(searched, None)
    port = free_port()
    server = spawn([*NAS, "dashboard", "--storage", searched.url, "--port", str(port), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/api/meta", timeout=2) as response:
                return json.loads(response.read())["artifact_is_available"]
        except OSError:
            return False

    try:
        wait_for(answers, timeout=60)
        errors: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            try:
                page = browser.new_page()
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"{base}/dashboard/studies/{study._study_id}/trials")
                page.get_by_text(study.study_name).first.wait_for(timeout=30_000)
                for trial in study.trials:
                    assert page.get_by_text(f"Trial {trial.number}", exact=True).count() >= 1
                page.get_by_text("Trial 1", exact=True).first.click()
                page.get_by_role("heading", name="Trial 1: COMPLETE").wait_for(timeout=30_000)
                block = TrialRecord.from_trial(study.trials[1]).arch_def[0][0]
                assert page.get_by_role("cell", name=block, exact=True).count() == 1
                assert page.get_by_text("architecture.json", exact=True).count() >= 1  # the note's link, the artifact
            finally:
                browser.close()
        assert errors == []
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
            raise
    assert server.returncode == 0
    assert json.loads(out)["url"] == f"{base}/dashboard"
