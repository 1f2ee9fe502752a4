"""What every `nas` sub-command shares: the Typer app, consoles, common options, JSON output."""

from __future__ import annotations

import json
import sys
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
