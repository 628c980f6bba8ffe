"""Atomic file replacement: a reader sees the old file or the complete new one, never a partial write."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: Path, write: Callable[[BinaryIO], None], durable: bool = False) -> None:
    """Write through `write(file)` into a temporary file next to `path`, fsync it, rename it over `path`.

    On any error (or interruption) the temporary file is removed and `path` is left as it was.
    durable: also fsync the directory, so the rename survives a power loss.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
