"""The `nas` command run inside the test process: no interpreter start-up, so error paths test in milliseconds."""

import sys

import pytest

from nas.cli import main


def run_nas(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """(exit code, stderr) of `nas ARGS`; run it in a ``monkeypatch.chdir``-ed folder."""
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    monkeypatch.setattr(sys, "argv", ["nas", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err
