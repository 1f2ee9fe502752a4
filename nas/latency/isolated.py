"""Whole networks timed in a child process that never trains, so a search times what a deployment runs.

A process that has trained runs inference slower afterwards: ten random ``mbconv`` networks, each
timed right after a one-epoch proxy training, took 1.10x (1.02-1.25x) their time in a fresh process
when the training process timed them, and 1.00x (0.94-1.19x) in a child that never trained
(``bench/search_latency.py``). A search that timed its candidates in its own process therefore
searched below its target. Every command that
trains and then times (``nas search``, ``nas train``, ``nas refine``, ``nas scale``) asks one
long-lived child per process instead: started on first use (a few seconds), it builds the network
with a module-level builder named in the request (JSON arguments: a genotype, a paper network's
name) and times it with ``measure_latency``. Requests and replies are JSON lines: nothing is
unpickled, and no network object crosses the pipe.

The child ignores Ctrl-C (its parent decides what an interruption means and stops it) and exits
when its parent does: its standard input closes.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import IO, Any

import torch

from nas.errors import MeasurementFailed
from nas.latency.layers import NUM_CLASSES
from nas.latency.measure import DeviceTimer, Timer, measure_latency
from nas.latency.settings import LatencySettings, Measurement
from search_spaces import Genotype, build_model

CHILD_MAIN = f"import {__name__}; {__name__}.main()"  # not ``-m``: the package imports this module first
STOP_WAIT_S = 5.0  # a child still measuring when its parent exits is killed after this


class _Child:
    """One measuring child and its two pipes; owned by the process that started it."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        # -P and the parent's own path: the child imports what the parent imports, never a
        # folder named like a package in the working directory
        path = os.pathsep.join(entry for entry in sys.path if entry)
        self.process = subprocess.Popen([sys.executable, "-P", "-c", CHILD_MAIN], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path})

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        requests, replies = self.process.stdin, self.process.stdout
        assert requests is not None and replies is not None
        try:
            requests.write(json.dumps(request) + "\n")
            requests.flush()
            line = replies.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.stop()
            raise MeasurementFailed(f"the latency-measuring process stopped (exit code {self.process.returncode}); "
                                    "its own error is printed above")
        return json.loads(line)

    def stop(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:  # unflushed bytes for a child that is gone
                    pass
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_child: _Child | None = None
_lock = threading.Lock()


def measure_built(builder: Callable[..., torch.nn.Module], arguments: dict[str, Any],
                  settings: LatencySettings) -> Measurement:
    """``builder(**arguments)`` built and timed in this process's child (started on first use).
    ``builder`` is a module-level function (the child imports it by name); ``arguments`` is JSON.

    Anything that interrupts an exchange (Ctrl-C, a dead child) stops the child, so the next
    measurement starts a clean one rather than reading a stale reply; a network the child could
    not build or time raises ``MeasurementFailed`` and leaves it running."""
    if "<" in builder.__qualname__:
        raise ValueError(f"{builder.__qualname__} is not a module-level function: the measuring child cannot import it")
    request = {"network": {"builder": f"{builder.__module__}:{builder.__qualname__}", "arguments": arguments},
               "settings": asdict(settings)}
    global _child
    with _lock:
        if _child is None or _child.owner != os.getpid():  # a forked copy must not share its parent's pipes
            _child = _Child()
        try:
            reply = _child.ask(request)
        except BaseException:
            _child.process.kill()
            _child.stop()
            _child = None
            raise
    if "error" in reply:
        raise MeasurementFailed(f"the latency-measuring process could not time the network: {reply['error']}")
    measured = Measurement(**reply["measurement"])
    return replace(measured, pass_ms=tuple(measured.pass_ms))


def space_network(genotype: dict[str, Any], norm: str) -> torch.nn.Module:
    """A network of a space as every latency counts it (1000 classes), from its JSON genotype."""
    return build_model(Genotype.from_dict(genotype), num_classes=NUM_CLASSES, norm=norm)


def measure_network(genotype: Genotype, settings: LatencySettings, norm: str = "bn") -> Measurement:
    """One whole network of a space, timed in the child."""
    return measure_built(space_network, {"genotype": genotype.to_dict(), "norm": norm}, settings)


class IsolatedTimer(DeviceTimer):
    """``DEVICE`` with whole networks timed in the child: for side-by-side timings
    (``measure_networks``) in a process that trains."""

    def network(self, genotype: Genotype, model: torch.nn.Module, settings: LatencySettings) -> Measurement:
        return measure_network(genotype, settings)


ISOLATED: Timer = IsolatedTimer()


@atexit.register
def _stop_child() -> None:
    if _child is not None and _child.owner == os.getpid():
        _child.stop()


def build(network: dict[str, Any]) -> torch.nn.Module:
    """The module a request describes: its builder, imported by name, called with its arguments."""
    module, _, qualname = network["builder"].partition(":")
    builder = importlib.import_module(module)
    for name in qualname.split("."):
        builder = getattr(builder, name)
    return builder(**network["arguments"])


def serve(requests: IO[str], replies: IO[str]) -> None:
    """Answer each request line with ``{"measurement": ...}`` or ``{"error": why}`` until the requests end."""
    for line in requests:
        request = json.loads(line)
        try:
            measured = measure_latency(build(request["network"]), LatencySettings(**request["settings"]))
            reply: dict[str, Any] = {"measurement": asdict(measured)}
        except Exception as error:  # noqa: BLE001 - the parent records it as the trial's reason
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library's print must not land among the replies
    try:
        serve(sys.stdin, replies)
    except BrokenPipeError:  # the parent is gone
        pass
    sys.stderr.flush()
    # every reply is flushed and nothing else is kept: the interpreter's teardown (torch's modules)
    # took 2-3 s here, which every command that measured waited for as it exited
    os._exit(0)
