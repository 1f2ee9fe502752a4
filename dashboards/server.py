"""optuna-dashboard on a study database, with the artifact folder the search writes to.

optuna-dashboard has no authentication: whoever reaches the port can read, rename and delete
studies. Callers bind to loopback unless told otherwise (``nas dashboard --host``).
"""

from __future__ import annotations

from pathlib import Path

import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore

from dashboards.attr_index import indexed_lookups
from storage import open_optuna_storage

LOOPBACK = "127.0.0.1"


def dashboard_app(url: str, artifacts: Path, *, indexed: bool = True):
    """optuna-dashboard's WSGI application (Bottle) on ``url``, for tests and production WSGI
    servers; ``indexed`` answers each request with the grouped note lookups (``attr_index``)."""
    app = optuna_dashboard.wsgi(open_optuna_storage(url), artifact_store=FileSystemArtifactStore(artifacts))
    if not indexed:
        return app

    def indexed_app(environ, start_response):
        with indexed_lookups():
            return list(app(environ, start_response))

    return indexed_app


def serve(url: str, artifacts: Path, host: str = LOOPBACK, port: int = 8080) -> None:
    """Serve until interrupted (optuna-dashboard's own single-process server, grouped lookups)."""
    with indexed_lookups():
        optuna_dashboard.run_server(open_optuna_storage(url), host=host, port=port,
                                    artifact_store=FileSystemArtifactStore(artifacts))
