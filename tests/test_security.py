"""Security: nothing unpickles, passwords stay out of every line and every stored byte, names
never climb out of their folder, and the dashboard is loopback-only unless told otherwise."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import optuna
import pytest

from nas import ProxySettings, SearchConfig, run_search
from nas.files import plain_name
from nas.cli import main
from nas.errors import UsageError
from nas.notes import artifact_dir
from storage import Store

from fakes import BlockLatency, WidthAccuracy
from inprocess import run_nas

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for package in ("nas", "search_spaces", "scaling", "storage", "dashboards", "bench")
                 for p in (ROOT / package).rglob("*.py"))
PASSWORD = "S3cret-pw"


def test_nothing_is_unpickled():
    """torch.load only with weights_only=True; no pickle, joblib or numpy-pickle reads at all."""
    found = []
    for path in SOURCES:
        text = path.read_text()
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in call.group(1):
                found.append(f"{path.relative_to(ROOT)}: {call.group(0)}")
        for bad in ("pickle.load", "pickle.Unpickler", "cloudpickle.load", "joblib.load", "allow_pickle=True", "dill.load"):
            if bad in text:
                found.append(f"{path.relative_to(ROOT)}: {bad}")
    assert not found, found


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "a\\b", "", "x\0y"])
def test_names_that_climb_out_of_their_folder_are_refused(name):
    with pytest.raises(UsageError, match="not a plain name"):
        plain_name(name, "--name")


def test_the_dashboard_needs_a_flag_for_another_host(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, stderr = run_nas(["dashboard", "--host", "0.0.0.0"], monkeypatch, capsys)
    assert code == 2 and "no authentication" in stderr and "--allow-remote" in stderr and len(stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_password_in_the_url_is_never_printed_or_stored(postgres_url, tmp_path, monkeypatch, capsys):
    # the test server trusts every connection, so a URL carrying a password connects as well
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@")
    assert PASSWORD in url
    monkeypatch.chdir(tmp_path)
    config = SearchConfig(target_latency_ms=5.0, space="tiny", trials=2, study=f"secret-{tmp_path.name}",
                          proxy=ProxySettings(epochs=1))
    result = run_search(config, Store.open(url), accuracy=WidthAccuracy(), latency=BlockLatency())
    assert PASSWORD not in repr(result)
    printed = []
    for args in (["trials", "--json"], ["best", "--json"], ["show", "0"], ["report", "-o", "r.html"],
                 ["search", "--space", "tiny", "--target-latency", "9ms"]):  # the last is refused: another target
        monkeypatch.setattr(sys, "argv", ["nas", *args, "--storage", url, "--study", config.study_name])
        with pytest.raises(SystemExit):
            main()
        captured = capsys.readouterr()
        printed.append(captured.out + captured.err)
    assert "target_latency_ms" in printed[-1]
    storage = optuna.storages.RDBStorage(url)
    stored = optuna.load_study(study_name=config.study_name, storage=storage)
    study_id = storage.get_study_id_from_name(config.study_name)
    blobs = printed + [json.dumps([stored.user_attrs, storage.get_study_system_attrs(study_id)], default=str)]
    blobs += [json.dumps([t.user_attrs, t.system_attrs, t.params], default=str) for t in stored.trials]
    folder = artifact_dir(url)
    files = [p.read_bytes() for base in (tmp_path, folder) if base.exists() for p in base.rglob("*") if p.is_file()]
    assert files  # the report and the trials' artifacts were written
    assert not any(PASSWORD in blob for blob in blobs)
    assert not any(PASSWORD.encode() in data for data in files)
