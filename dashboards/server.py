"""optuna-dashboard on a study database, with the artifact folder the search writes to.

optuna-dashboard has no authentication: whoever reaches the port can read, rename and delete
studies. Callers bind to loopback unless told otherwise (``nas dashboard --host``).
"""

from __future__ import annotations

from pathlib import Path

import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore

from storage import open_optuna_storage

LOOPBACK = "127.0.0.1"


def dashboard_app(url: str, artifacts: Path):
    """optuna-dashboard's WSGI application (Bottle) on ``url``; what ``serve`` runs, for tests and
    for production WSGI servers."""
    return optuna_dashboard.wsgi(open_optuna_storage(url), artifact_store=FileSystemArtifactStore(artifacts))


def serve(url: str, artifacts: Path, host: str = LOOPBACK, port: int = 8080) -> None:
    """Serve until interrupted (optuna-dashboard's own single-process server)."""
    optuna_dashboard.run_server(open_optuna_storage(url), host=host, port=port,
                                artifact_store=FileSystemArtifactStore(artifacts))
