"""What every `nas` sub-command shares: the Typer app, consoles, common options, JSON output."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Hardware-aware neural architecture search for image classifiers.")
# Piped output gets a wide fixed width so block strings are never cut to fit 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)

StorageOpt = Annotated[Optional[str], typer.Option("--storage", help="database URL [default: $NAS_STORAGE or sqlite:///nas.db]")]
StudyOpt = Annotated[Optional[str], typer.Option("--study", help="study name [default: the only study]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def nas_command() -> str:
    """How this nas was called, to repeat in hints: `nas` when PATH finds this program, else the path
    typed (`.venv/bin/nas` from an unactivated venv), or `python -m nas`."""
    program = Path(sys.argv[0])
    if program.name == "__main__.py":
        python = Path(sys.executable)
        found = shutil.which(python.name)
        shown = python.name if found and Path(found).resolve() == python.resolve() else _short(python)
        return f"{shlex.quote(shown)} -m nas"
    found = shutil.which("nas")
    return "nas" if found and Path(found).resolve() == program.resolve() else shlex.quote(str(program))


def _short(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (`.venv/bin/python`)."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


def open_hints(storage: str | None, database: str, study: str) -> list[str]:
    """The closing lines of a command that wrote a study: how to open it with nas, as the user
    called nas (``storage``: the --storage given, if any; ``database``: it without its password)."""
    nas = nas_command()
    where = f" --storage {shlex.quote(database)}" if storage is not None else ""
    return [f"open the study:  {nas} dashboard{where}",
            f"                 {nas} report -o report.html{where} --study {shlex.quote(study)}"]
