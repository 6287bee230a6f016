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


def missing_dirs(path: str | Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first (what a
    ``mkdir(parents=True)`` of ``path`` would create)."""
    missing, p = [], Path(path).absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def remove_empty(dirs: list[Path]) -> None:
    """Remove ``dirs`` (deepest first, from ``missing_dirs``) while they are empty: a refusal after a
    folder was made leaves no empty half-made folder behind."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:  # not empty (something was written there), or already gone
            return


@contextlib.contextmanager
def no_half_made_dirs(path: str | Path) -> Iterator[None]:
    """The folders the block creates on the way to ``path`` are removed again, if empty, when it raises."""
    made = missing_dirs(path)
    try:
        yield
    except BaseException:
        remove_empty(made)
        raise
