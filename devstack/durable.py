"""Files that survive a crash or a power loss whole: the old version or the new one, never
half of either.

A rename is atomic, but only durable once the directory entry itself is flushed: without
the directory's fsync a power loss after `os.replace` can bring back the old name (or no
file at all, for a new one). Both the snapshot (devstack/state.py) and the credentials
(devstack/sigv4.py) are written here; the journal (devstack/journal.py) flushes its
directory once, when it creates the file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE = 0o600  # everything under .devstack/ is the developer's key material


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (a new or renamed file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    """Write `data` to `path` so that a crash at any moment leaves either the previous
    file or the complete new one: temp file in the same directory, fsync, rename over,
    fsync of the directory. The file is created with `mode` (never wider, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
