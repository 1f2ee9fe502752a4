"""The ``nas`` command: parses flags into the Python API and prints its results.

Every error the user can fix becomes one line on stderr and exit code 2, never a traceback.
Each module registers its sub-commands on the one Typer app when imported.
"""

from __future__ import annotations

import sys

from nas.cli import dashboard, estimators, latency, models, scale, search, supernet  # noqa: F401 -- each registers its commands
from nas.cli.common import app
from nas.errors import NasError
from storage import StorageError


def main() -> None:
    """Entry point: user-fixable errors print one line and exit 2."""
    try:
        app()
    except (NasError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # commands with something to resume say how themselves; this catches the rest
        print("interrupted: what finished is stored; run the same command again to resume", file=sys.stderr)
        sys.exit(130)
