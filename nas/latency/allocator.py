"""The memory allocator a latency was measured with: part of the device, since it moves latency 1.5-2x.

glibc by default maps every large block (activations of a few hundred KB and up) fresh from the
OS and unmaps it when freed, so each forward pass pays page faults that zero memory. nas measures
with freed memory ``kept`` (glibc's mmap and trim thresholds raised, as a deployment's arena or
caching allocator would); ``default`` is glibc as a plain process gets it; an allocator loaded with
``LD_PRELOAD`` (jemalloc, tcmalloc) replaces both. A latency only holds where the same allocator
runs, so the mode is in the device fingerprint and an export states the environment that gives it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
from collections.abc import Mapping
from pathlib import Path

from nas.errors import UsageError

ALLOCATORS = ("kept", "default")  # what --allocator chooses; a preloaded allocator overrides either
PRELOADABLE = ("jemalloc", "tcmalloc")
THRESHOLD = 1 << 30  # bytes: no activation is ever handed back to the OS
# the environment that makes glibc keep freed memory in any process, as nas's mallopt does in its own
KEPT_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(THRESHOLD)}
MAPS = Path("/proc/self/maps")  # the libraries this process has loaded
_applied: set[str] = set()  # modes this process has measured with; glibc cannot be put back to default


def check_allocator(mode: str) -> None:
    if mode not in ALLOCATORS:
        raise UsageError(f"--allocator: unknown {mode!r}; choose one of {', '.join(ALLOCATORS)}")


@functools.cache
def preloaded_allocator() -> str | None:
    """jemalloc or tcmalloc when this process runs on it (``LD_PRELOAD``), else None."""
    try:
        text = MAPS.read_text()
    except OSError:
        text = os.environ.get("LD_PRELOAD", "")
    return next((name for name in PRELOADABLE if f"lib{name}" in text), None)


def preloaded_library(name: str) -> str | None:
    """The path of the loaded ``lib{name}``, to preload it again in a deployment."""
    try:
        paths = [line.split()[-1] for line in MAPS.read_text().splitlines() if f"lib{name}" in line]
    except OSError:
        return None
    return paths[0] if paths else None


def effective_allocator(mode: str) -> str:
    """What a measurement with ``--allocator mode`` really runs on: a preloaded allocator wins."""
    check_allocator(mode)
    return preloaded_allocator() or mode


def environment_allocator(env: Mapping[str, str]) -> str:
    """The allocator a fresh process started with ``env`` runs on."""
    preload = env.get("LD_PRELOAD", "")
    found = next((name for name in PRELOADABLE if f"lib{name}" in preload), None)
    if found:
        return found
    tuned = any(key in env for key in KEPT_ENVIRONMENT) or "glibc.malloc." in env.get("GLIBC_TUNABLES", "")
    return "kept" if tuned else "default"


def deployment_environment(allocator: str, threads: int) -> dict[str, str]:
    """The environment variables that reproduce a measurement's allocator and thread count."""
    env = {"OMP_NUM_THREADS": str(threads)}
    if allocator == "kept":
        env.update(KEPT_ENVIRONMENT)
    elif allocator in PRELOADABLE:
        env["LD_PRELOAD"] = preloaded_library(allocator) or f"lib{allocator}.so"
    return env


def with_allocator(env: Mapping[str, str], allocator: str) -> dict[str, str]:
    """``env`` with glibc's thresholds set (``kept``) or removed (``default``), nothing else changed."""
    check_allocator(allocator)
    changed = {k: v for k, v in env.items() if k not in KEPT_ENVIRONMENT}
    return {**changed, **KEPT_ENVIRONMENT} if allocator == "kept" else changed


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc keep freed activations for reuse instead of handing them back to the OS (see
    the module's docstring). Returns whether it applied (glibc only)."""
    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or not name:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, THRESHOLD) and libc.mallopt(m_trim_threshold, THRESHOLD))


def use_allocator(mode: str) -> None:
    """Put this process in ``mode`` before timing. glibc's thresholds, once raised, stay raised,
    so ``default`` after ``kept`` (or with them set in the environment) is refused, not faked."""
    check_allocator(mode)
    if preloaded_allocator():
        return
    if mode == "default":
        if "kept" in _applied or environment_allocator(os.environ) != "default":
            raise UsageError("--allocator default: this process already keeps freed memory (glibc's thresholds are "
                             f"raised{' in the environment' if 'kept' not in _applied else ''}); "
                             f"measure in a fresh process without {', '.join(KEPT_ENVIRONMENT)}")
    else:
        keep_freed_memory()
    _applied.add(mode)
