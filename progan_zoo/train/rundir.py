"""Run directories are never clobbered: one run per directory, one training process at a time.

- A directory that already holds a run (``run.json``, ``log.jsonl``, ``spec.yaml``, ``samples/`` or
  ``checkpoints/``) is refused unless the run is being resumed there (``--resume``); the refusal
  writes nothing, so the old run stays byte for byte as it was.
- Resuming *into the same directory* from a checkpoint that is not its newest is refused: the new
  checkpoints would interleave with the later ones of another history. ``--out`` branches off.
- ``train.lock`` (JSON: pid, host, start time) is created with ``O_EXCL`` while a process trains into
  the directory; a second process is refused, naming the first. A lock left by a process that died
  (same host, pid gone) is taken over; a lock from another host is never guessed about.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from progan_zoo.errors import UsageError

from . import checkpoint as ckpt_io

LOCK = "train.lock"
RUN_FILES = ("run.json", "log.jsonl", "spec.yaml", "samples", "checkpoints")


def run_contents(run_dir: Path) -> list[str]:
    """The files of a run that ``run_dir`` already holds (empty: nothing a new run would overwrite)."""
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def check_target(run_dir: Path, resume_ckpt: Path | None) -> None:
    """Refuse to train into ``run_dir`` when that would mix two runs (module docstring). Writes nothing."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir}: exists and is not a directory (hint: choose another --out)")
    resume_run = resume_ckpt.parent.parent if resume_ckpt is not None else None
    same_run = resume_run is not None and run_dir.exists() and run_dir.resolve() == resume_run.resolve()
    if same_run:
        newest = ckpt_io.latest_checkpoint(run_dir)
        if newest is not None and newest.resolve() != resume_ckpt.resolve():
            raise UsageError(f"{resume_ckpt}: not the newest checkpoint of {run_dir} (newest: {newest.name}); continuing "
                             f"from it there would mix two histories (hint: add --out NEW_DIR to branch off from "
                             f"{resume_ckpt.name}, or --resume {run_dir} to continue from {newest.name})")
        return
    held = run_contents(run_dir)
    if not held:
        return
    if resume_run is not None:
        raise UsageError(f"--out {run_dir}: already holds another run ({', '.join(held)}); resuming {resume_ckpt} there "
                         "would mix two runs (hint: choose an empty --out, or leave --out out to continue in "
                         f"{resume_run})")
    raise UsageError(f"{run_dir}: already holds a run ({', '.join(held)}); nothing was changed (hint: continue it with "
                     f"`progan-zoo train --resume {run_dir}`, or start a new run with --out NEW_DIR)")


def _run_json(run_dir: Path) -> dict:
    """A run's ``run.json`` (empty when missing or unreadable)."""
    try:
        data = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def prior_settings(run_dir: Path) -> dict[str, float]:
    """``total_kimg`` and ``tick_kimg`` from a run's ``run.json`` (empty when missing or unreadable:
    then the spec's defaults apply, as for a new run)."""
    data = _run_json(run_dir)
    out = {}
    for key in ("total_kimg", "tick_kimg"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            out[key] = float(value)
    return out


def prior_init_from(run_dir: Path) -> dict | None:
    """The ``init_from`` record of a fine-tuning run's ``run.json`` (None: not fine-tuned, or unreadable)."""
    value = _run_json(run_dir).get("init_from")
    return value if isinstance(value, dict) else None


@dataclass
class LockInfo:
    """What ``train.lock`` says about the process that holds it."""

    pid: int
    host: str
    started: str

    def to_json(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "LockInfo | None":
        try:
            data = json.loads(text)
            return cls(pid=int(data["pid"]), host=str(data["host"]), started=str(data.get("started", "?")))
        except (ValueError, KeyError, TypeError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``train.lock`` of a run directory, held from ``acquire()`` to ``release()`` (also a context manager)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self.me = LockInfo(pid=os.getpid(), host=socket.gethostname(),
                           started=datetime.now().isoformat(timespec="seconds"))
        self.held = False

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # create; or take over a stale lock and create again (another taker may win)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._clear_stale_or_refuse()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self.me.to_json())
            self.held = True
            return self
        raise UsageError(f"{self.path}: could not take the lock (another process keeps taking it); try again")

    def _clear_stale_or_refuse(self) -> None:
        try:
            other = LockInfo.from_json(self.path.read_text())
        except FileNotFoundError:
            return  # released meanwhile
        if other is not None and other.host == self.me.host and not _alive(other.pid):
            self.path.unlink(missing_ok=True)  # its process is gone (killed): the lock is stale
            return
        who = f"pid {other.pid} on {other.host}, since {other.started}" if other else "unreadable lock file"
        raise UsageError(f"{self.path.parent}: another process is training into it ({who}) (hint: wait for it, "
                         f"stop it, or use another --out; if that process is gone, delete {self.path})")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            if LockInfo.from_json(self.path.read_text()) == self.me:
                self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim(run_dir: Path, resume_ckpt: Path | None) -> RunLock:
    """Check the directory, take its lock, check again (another process may have written in between).

    A refusal before the lock writes nothing; a refusal after it removes the lock it made.
    """
    check_target(run_dir, resume_ckpt)
    lock = RunLock(run_dir).acquire()
    try:
        check_target(run_dir, resume_ckpt)
    except BaseException:
        lock.release()
        raise
    return lock
