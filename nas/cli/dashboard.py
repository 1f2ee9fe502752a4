"""`nas dashboard` and `nas report`: optuna-dashboard on the study database and a self-contained report."""

from __future__ import annotations

import ipaddress
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from nas.cli.common import JsonOpt, StorageOpt, StudyOpt, app, err, out, print_json
from nas.errors import UsageError


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@app.command()
def dashboard(
    storage: StorageOpt = None,
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    host: Annotated[str, typer.Option(help="address to bind; anything but loopback exposes every study, unauthenticated")] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="allow a --host other than loopback "
                                                                      "(optuna-dashboard has no authentication)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve optuna-dashboard on the study database, with each trial's note and artifacts (no authentication)."""
    from dashboards.server import serve
    from nas.notes import artifact_dir
    from storage import Store

    store = Store.open(storage, create=False)  # a bad URL fails here, in one line, before the server starts
    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    if not _is_loopback(host) and not allow_remote:
        raise UsageError(f"--host {host}: optuna-dashboard has no authentication, so anyone who reaches it can read, "
                         "change and delete every study; add --allow-remote to serve there anyway, or keep 127.0.0.1 "
                         "and use an SSH tunnel")
    store.optuna()  # a database Optuna cannot use fails here too, before the banner
    artifacts = artifact_dir(store.url)
    if not _is_loopback(host):
        err.print(f"warning: serving on {host}:{port}: optuna-dashboard has no authentication, so anyone who "
                  "can reach this port can read, change and delete every study in the database", soft_wrap=True)
    info = {"url": f"http://{host}:{port}/dashboard", "storage": str(store), "artifacts": str(artifacts), "host": host,
            "port": port}
    if as_json:
        print_json(info)
    else:
        out.print(f"optuna-dashboard on {info['url']} (storage {store}, artifacts {artifacts}/); Ctrl-C stops it")
    sys.stdout.flush()
    try:
        serve(store, artifacts, host, port)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}; pass another --port or --host") from None


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")] = Path("report.html"),
    png: Annotated[bool, typer.Option("--png", help="also write one PNG per figure beside it (needs Chromium)")] = False,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report of a study: accuracy vs latency, history, latency model, scaling,
    and the path of every refinement (`nas refine`) in the database."""
    from dashboards.report import ReportError, build_report, write_html, write_pngs
    from nas.results import load_study
    from storage import Store

    start = time.perf_counter()
    store = Store.open(storage, create=False)
    loaded = load_study(store, study)
    built = build_report(loaded, store)
    try:
        path = write_html(built, output)
        pngs = write_pngs(built, output) if png else []
    except ReportError as error:
        raise UsageError(str(error)) from None
    wall_s = time.perf_counter() - start
    if as_json:
        print_json({"output": str(path), "pngs": [str(p) for p in pngs], "figures": list(built.figures),
                    "wall_s": wall_s, "summary": built.summary})
        return
    out.print(f"wrote {path} ({len(built.figures)} figures: {', '.join(built.figures)}; "
              f"{built.summary['trials']} trials) in {wall_s:.1f} s")
    for p in pngs:
        out.print(f"wrote {p}")
