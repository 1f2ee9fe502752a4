"""optuna-dashboard on a real `nas search` study: the WSGI app in-process, then `nas dashboard` in
headless Chromium (Debian's package, driven by Playwright; no browser download)."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest

from conftest import NAS, _free_port, wait_for
from dashboards.server import dashboard_app
from nas.notes import artifact_dir
from nas.results import load_study

CHROMIUM = Path("/usr/bin/chromium")
SEARCH = ["search", "--space", "tiny", "--target-latency", "2ms", "--trials", "3", "--epochs", "1",
          "--proxy-resolution", "16", "--resolution", "64"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> str:
    """One real three-trial search into a real SQLite file, shared by this module's tests."""
    cwd = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{cwd / 'nas.db'}"
    subprocess.run([*NAS, *SEARCH, "--storage", url, "--json"], cwd=cwd, check=True, capture_output=True, timeout=300)
    return url


def _wsgi_get(app, path: str) -> tuple[str, bytes]:
    environ = {"PATH_INFO": path.split("?")[0], "QUERY_STRING": path.partition("?")[2]}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    return status[0], body


def test_every_trial_has_a_note_and_its_architecture_through_the_wsgi_app(searched):
    study = load_study(searched, None)
    app = dashboard_app(searched, artifact_dir(searched))
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
        attrs = stored.user_attrs
        assert note.startswith(f"### Trial {stored.number}: COMPLETE")
        assert f"{attrs['latency_ms']:.3f} ms ± {attrs['latency_spread_ms']:.3f}" in note and "64 px, batch 1" in note
        assert all(f"`{block}`" in note for stage in attrs["arch_def"] for block in stage)
        [link] = [line for line in note.splitlines() if line.startswith("- [architecture.json]")]
        status, file = _wsgi_get(app, link[link.index("](") + 2:-1])
        assert status.startswith("200")
        architecture = json.loads(file)
        assert architecture["arch_def"] == attrs["arch_def"]
        assert architecture["name"] == f"{study.study_name}/{stored.number}" and architecture["resolution"] == 64
        assert architecture["provenance"]["latency_ms"] == attrs["latency_ms"]


def test_nas_dashboard_shows_the_study_and_a_note_in_chromium(searched):
    from playwright.sync_api import sync_playwright

    study = load_study(searched, None)
    port = _free_port()
    server = subprocess.Popen([*NAS, "dashboard", "--storage", searched, "--port", str(port), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
            page = browser.new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{base}/dashboard/studies/{study._study_id}/trials")
            page.get_by_text(study.study_name).first.wait_for(timeout=30_000)
            for trial in study.trials:
                assert page.get_by_text(f"Trial {trial.number}", exact=True).count() >= 1
            page.get_by_text("Trial 1", exact=True).first.click()
            page.get_by_role("heading", name="Trial 1: COMPLETE").wait_for(timeout=30_000)
            block = study.trials[1].user_attrs["arch_def"][0][0]
            assert page.get_by_role("cell", name=block, exact=True).count() == 1
            assert page.get_by_text("architecture.json", exact=True).count() >= 1  # the note's link, the artifact
            browser.close()
        assert errors == []
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert json.loads(out)["url"] == f"{base}/dashboard"


def test_another_host_is_served_only_with_a_warning(nas_cli):
    # 192.0.2.1 (TEST-NET-1) is on no interface: the warning is printed, then binding fails in one line
    proc = nas_cli("dashboard", "--host", "192.0.2.1", "--port", str(_free_port()), check=False, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert lines[0].startswith("warning: serving on 192.0.2.1") and "no authentication" in proc.stderr
    assert lines[-1].startswith("error: cannot listen on 192.0.2.1")



def test_grouped_note_lookups_serve_exactly_what_optuna_dashboard_serves(searched):
    study = load_study(searched, None)
    first = study.get_trials(deepcopy=False)[0]
    meta = {"artifact_id": "0000-ui", "filename": "ui.txt", "mimetype": "text/plain", "encoding": None}
    study._storage.set_study_system_attr(study._study_id, f"dashboard:artifacts:{first._trial_id}:0000-ui", json.dumps(meta))
    path = f"/api/studies/{study._study_id}"
    stock = json.loads(_wsgi_get(dashboard_app(searched, artifact_dir(searched), indexed=False), path)[1])
    grouped = json.loads(_wsgi_get(dashboard_app(searched, artifact_dir(searched)), path)[1])
    assert grouped == stock
    assert any(a["filename"] == "ui.txt" for a in grouped["trials"][0]["artifacts"])  # a study-kept artifact too
    assert all(t["note"]["body"].startswith("### Trial") for t in grouped["trials"])
