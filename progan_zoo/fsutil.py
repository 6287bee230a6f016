"""File-system helpers for writers that must survive a kill (dataset caches, checkpoints, feature caches, pictures)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


def fsync_path(path: str | Path) -> None:
    """fsync a file or a directory, so a rename that follows is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replaced_atomically(path: str | Path) -> Iterator[Path]:
    """Yield a temporary name beside ``path`` to write to; when the block ends without an error it is renamed
    onto ``path`` (atomic on POSIX), otherwise removed. Readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
