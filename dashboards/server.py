"""optuna-dashboard on a study database, with the artifact folder the search writes to.

optuna-dashboard has no authentication: whoever reaches the port can read, rename and delete
studies. Callers bind to loopback unless told otherwise (``nas dashboard --host``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore

from dashboards.attr_index import indexed_request, install
from storage import Store

LOOPBACK = "127.0.0.1"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def dashboard_app(store: Store, artifacts: Path, *, indexed: bool = True) -> WSGIApp:
    """optuna-dashboard's WSGI application (Bottle) on ``store``, for tests and production WSGI
    servers (threaded ones included); ``indexed`` answers each request with the grouped note
    lookups (``attr_index``)."""
    app = optuna_dashboard.wsgi(store.optuna(), artifact_store=FileSystemArtifactStore(artifacts))
    if not indexed:
        return app
    install()

    def indexed_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with indexed_request():
            return list(app(environ, start_response))

    return indexed_app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow study page does not hold up the dashboard's other calls."""

    daemon_threads = True  # Ctrl-C does not wait for open connections


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def serve(store: Store, artifacts: Path, host: str = LOOPBACK, port: int = 8080) -> None:
    """Serve until interrupted (Ctrl-C returns normally); binding errors raise ``OSError``."""
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    with make_server(host, port, dashboard_app(store, artifacts), server_class=server_class) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
