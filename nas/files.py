"""Writing files so that a crash or a reader never sees half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from nas.errors import UsageError


def replace_atomically(write: Callable[[str], object], path: Path) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, fsync, then rename it onto ``path`` (and
    fsync the folder), so a reader or a crash never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plain_name(name: str, flag: str) -> str:
    """``name`` when it can be a file name of its own; a name that would climb out of its folder
    (a separator, ``..``, a NUL) is refused, so a stored or typed name never writes elsewhere."""
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise UsageError(f"{flag}: {name!r} is not a plain name; use letters, digits, '-', '_' and '.' "
                         "(not first), no '/'")
    return name
