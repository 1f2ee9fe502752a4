"""Timing and computing take turns on one machine: a latency is timed while no nas process here computes.

A latency timed while another process trains on the other core reads slower (8 random ``mbconv``
networks in the measuring child: 1.07x alone, median, 0.97-1.15x), and parallel workers (``--workers``,
Ray Tune, a second ``nas`` command) train while others time. So a measurement holds the machine
(``measuring``) and work that would disturb it runs in short pieces inside ``computing`` (a training
step, a validation batch), which wait while a measurement holds it. A measurement waits for the
pieces under way (one step: tens of milliseconds), never for a whole training.

Two ``flock`` locks in the temporary folder: a piece holds the work lock shared, a measurement
exclusively; a measurement holds the turnstile while it waits and pieces pass through it first, so
pieces that follow each other on several cores cannot shut a measurement out for good. Locks end
with their process, ``kill -9`` included. Within one thread, ``computing`` inside ``measuring`` is
the measurement's own work and takes nothing.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WORK_LOCK = Path(tempfile.gettempdir()) / "nas-latency.lock"
TURNSTILE = Path(tempfile.gettempdir()) / "nas-latency-turnstile.lock"

_held = threading.local()  # what this thread holds: "measuring", "computing" or nothing


def _locked(path: Path, mode: int) -> int:
    """A descriptor of ``path`` holding ``mode``; waits for it, and closes it if the wait is interrupted.
    Opened for reading (all ``flock`` needs), so another user's lock file serves too."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, mode)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


@contextmanager
def _holding(kind: str, mode: int) -> Iterator[None]:
    turnstile = _locked(TURNSTILE, mode)  # a measurement keeps it while it waits; pieces only pass through
    try:
        work = _locked(WORK_LOCK, mode)
    finally:
        os.close(turnstile)
    _held.kind = kind
    try:
        yield
    finally:
        _held.kind = None
        os.close(work)


@contextmanager
def measuring() -> Iterator[None]:
    """Hold the machine for a measurement: the pieces of work under way end first, new ones wait."""
    held = getattr(_held, "kind", None)
    if held == "measuring":
        yield
        return
    if held == "computing":
        raise RuntimeError("a latency cannot be timed inside a computing() piece of work: it would wait for itself")
    with _holding("measuring", fcntl.LOCK_EX):
        yield


@contextmanager
def computing() -> Iterator[None]:
    """Run one short piece of work (a training step) when no measurement holds the machine."""
    if getattr(_held, "kind", None) is not None:  # this thread's own measurement, or a piece already held
        yield
        return
    with _holding("computing", fcntl.LOCK_SH):
        yield
