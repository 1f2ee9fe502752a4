"""The ``nas`` command: parses flags into the Python API and prints its results.

Every error the user can fix becomes one line on stderr and an exit code from ``nas.errors``
(2 for bad input, 3-7 for database faults), never a traceback. Each module registers its
sub-commands on the one Typer app when imported.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sqlite3
import sys
import threading

from typer import Abort
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click and re-exports neither

from nas.cli import dashboard, estimators, latency, models, refine, scale, search, supernet  # noqa: F401 -- each registers its commands
from nas.cli.common import app
from nas.errors import EXIT_DATABASE, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, NasError
from nas.interrupts import Interrupts


def _caused_by_database(error: BaseException | None) -> bool:
    """Whether a driver error is at the root of ``error`` (Optuna wraps them in its own)."""
    from sqlalchemy.exc import SQLAlchemyError

    while error is not None:
        if isinstance(error, (SQLAlchemyError, sqlite3.Error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _storage_flag() -> str | None:
    """The command's ``--storage`` value, to name the database a fault happened in."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg.startswith("--storage="):
            return arg.split("=", 1)[1]
        if arg == "--storage" and i + 1 < len(args):
            return args[i + 1]
    return None


def _usage_line(error: UsageError) -> str:
    """Click's three-line usage error as one line that says where the accepted values are."""
    command = error.ctx.command_path if error.ctx is not None else "nas"
    return f"error: {error.format_message()} (see `{command} --help`)"


def _clear_interrupt_mark() -> None:
    """Let ``python -m nas`` exit with the code chosen here after a handled Ctrl-C or SIGTERM.

    CPython (3.11) marks a KeyboardInterrupt raised inside any ``exec`` of a string (alembic and
    SQLAlchemy build methods that way while a database opens) as unhandled, even once caught, and
    ``python -m`` then ends the process by SIGINT instead of with its exit code. Every ``exec`` of
    a string clears the mark first, so an empty one does.
    """
    exec("")


def main() -> None:
    """Entry point: user-fixable errors print one line and exit with their code; Ctrl-C exits 130,
    SIGTERM (the same path) 143."""
    # what is still alive at exit is not collected: its memory goes back with the process. Python's
    # last collection of a heap with torch and a study in it took 2-3 s here at the end of every
    # command; what must happen at exit is an atexit hook (the measuring child, worker processes,
    # Ray) or was closed by its ``with`` block. (At exit, not now: tests call ``main`` in-process.)
    atexit.register(gc.freeze)
    interrupts = Interrupts()
    on_main_thread = threading.current_thread() is threading.main_thread()  # only it can take signals
    with interrupts.installed() if on_main_thread else contextlib.nullcontext():
        code = _run()
    if interrupts.terminated:
        code = EXIT_TERMINATED
    _clear_interrupt_mark()
    sys.exit(code or 0)


def _run() -> int | None:
    """The command; its errors as one line and an exit code."""
    try:
        return app(standalone_mode=False)
    except NoArgsIsHelpError as error:  # a command group alone: its help, as click prints it
        error.show()
        return EXIT_USAGE
    except UsageError as error:
        print(_usage_line(error), file=sys.stderr)
        return EXIT_USAGE
    except NasError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Abort):  # commands with something to resume say how themselves
        print("interrupted: what finished is stored; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a database fault, maybe wrapped by Optuna (storage loads only now: --help stays fast)
        from storage import StorageError, database_error, resolve_url

        if isinstance(error, StorageError):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_DATABASE[error.fault]
        if _caused_by_database(error):
            fault = database_error(error, resolve_url(_storage_flag()))
            print(f"error: {fault}", file=sys.stderr)
            return EXIT_DATABASE[fault.fault]
        raise
