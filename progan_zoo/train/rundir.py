"""Run directories are never clobbered: one run per directory, one training process at a time.

- A directory that already holds a run (``run.json``, ``log.jsonl``, ``spec.yaml``, ``samples/`` or
  ``checkpoints/``) is refused unless the run is being resumed there (``--resume``); the refusal
  writes nothing, so the old run stays byte for byte as it was.
- Resuming *into the same directory* from a checkpoint that is not its newest is refused: the new
  checkpoints would interleave with the later ones of another history. ``--out`` branches off.
- ``train.lock`` (JSON: pid, host, start time, a new run's settings) is created with ``O_EXCL`` while a process trains into
  the directory; a second process is refused, naming the first. A lock left by a process that died
  (same host, pid gone) is taken over; a lock from another host is never guessed about.
- No dead ends after a kill. A run that stopped before its first complete checkpoint (an early
  Ctrl-C, kill or OOM: on a busy machine the first checkpoint can be minutes away) is started again
  from the beginning by ``--resume DIR`` with the settings its ``run.json`` recorded, or its lock if
  it died before writing that (``Restart``);
  what it wrote is removed first (``clear_outputs``). A run resumed from a checkpoint drops what was
  written after that checkpoint (``trim_to_checkpoint``), so ``log.jsonl`` holds one history and no
  older sample grid is shown as the newest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from progan_zoo.errors import UsageError
from progan_zoo.fsutil import missing_dirs, remove_empty, replaced_atomically

from . import checkpoint as ckpt_io

LOCK = "train.lock"
RUN_FILES = ("run.json", "log.jsonl", "spec.yaml", "samples", "checkpoints")
TICK_LOGS = ("log.jsonl", "metrics.jsonl")       # one JSON line per tick (metrics: per measurement)
TENSORBOARD_GLOB = "events.out.tfevents.*"


def run_contents(run_dir: Path) -> list[str]:
    """The files of a run that ``run_dir`` already holds (empty: nothing a new run would overwrite)."""
    return [name for name in RUN_FILES if (run_dir / name).exists()
            and not (name == "samples" and (run_dir / name).is_dir() and not any((run_dir / name).iterdir()))]


@dataclass(frozen=True)
class Restart:
    """A run directory whose run stopped before its first complete checkpoint, and the settings it
    recorded in ``run.json`` (None where it recorded none: then the command's own apply)."""

    run_dir: Path
    spec: Path                # its spec.yaml, or (killed before writing that) the spec file its lock names
    seed: int | None
    data: str | None
    mirror: bool | None


def never_checkpointed(path: str | Path) -> Restart | None:
    """``path`` as a run to start again from the beginning, or None when it is not a run directory
    without a checkpoint (a checkpoint folder, a run with checkpoints, nothing at all: the checkpoint
    reader handles and reports those)."""
    run_dir = Path(path)
    if not run_dir.exists():  # killed before it made its directory (a busy machine can take seconds to get there)
        raise UsageError(f"{path}: no such run directory or checkpoint, so nothing was started there (hint: start the "
                         f"run with `progan-zoo train SPEC --out {path}`, or give RUN_DIR or "
                         "RUN_DIR/checkpoints/ckpt-XXXXXXXXX)")
    if not run_dir.is_dir() or ckpt_io.CKPT_RE.match(run_dir.name) or ckpt_io.latest_checkpoint(run_dir) is not None:
        return None
    recorded = _read_json(run_dir / "run.json")
    if not _left_by_a_run(run_dir, recorded):
        return None
    # Killed before spec.yaml and run.json were written: the settings its lock recorded when it began.
    early = _lock_record(run_dir)
    spec = run_dir / "spec.yaml" if (run_dir / "spec.yaml").is_file() else Path(str(early.get("spec", "")))
    if not spec.name or not spec.is_file():
        raise UsageError(f"{run_dir}: the run stopped before it recorded its spec, so there is nothing to resume "
                         f"(hint: start it again with `progan-zoo train SPEC --out {run_dir}`)")
    config = recorded.get("config") if isinstance(recorded.get("config"), dict) else {}
    seed, data = recorded.get("seed", early.get("seed")), recorded.get("data") or early.get("data")
    mirror = recorded.get("mirror", config.get("mirror", early.get("mirror")))
    return Restart(run_dir=run_dir, spec=spec,
                   seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                   data=data if isinstance(data, str) and data else None,
                   mirror=mirror if isinstance(mirror, bool) else None)


def _left_by_a_run(run_dir: Path, recorded: dict) -> bool:
    """A run's traces, in the order the trainer makes them: train.lock, spec.yaml, run.json. (A saved
    model folder holds a spec.yaml too, but neither of the others: it is no run to start again.)"""
    return (run_dir / LOCK).exists() or "spec_sha256" in recorded


def _lock_record(run_dir: Path) -> dict:
    """The settings a run's ``train.lock`` recorded when it began (``LockInfo.run``)."""
    record = _read_json(run_dir / LOCK).get("run")
    return record if isinstance(record, dict) else {}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clear_outputs(run_dir: Path) -> list[str]:
    """Remove what a run that never checkpointed wrote as it went (logs, sample grids, TensorBoard events,
    a half-written checkpoint), before it starts again; ``spec.yaml`` stays (it is trained again) and
    ``run.json`` is rewritten. Returns the names removed."""
    gone = []
    for name in (*TICK_LOGS, "samples", "training.png"):
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
        else:
            continue
        gone.append(name)
    for p in run_dir.glob(TENSORBOARD_GLOB):
        p.unlink()
        gone.append(p.name)
    folder = run_dir / "checkpoints"
    if folder.is_dir():
        shutil.rmtree(folder)  # nothing complete in it (never_checkpointed): only .tmp leftovers
        gone.append("checkpoints")
    return gone


def trim_to_checkpoint(run_dir: Path, tick: int, nimg: int) -> None:
    """Drop what a run wrote after its checkpoint at ``tick`` / ``nimg`` (the resumed run writes it
    again): later lines of the tick logs, later sample grids, half-written checkpoints."""
    for name in TICK_LOGS:
        path = run_dir / name
        if not path.is_file():
            continue
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not _after(line, tick, name == "log.jsonl")]
        if len(kept) != len(lines):
            with replaced_atomically(path) as tmp:
                tmp.write_text("".join(kept))
    samples, newest = run_dir / "samples", nimg // 1000
    later = [p for p in samples.glob("kimg-*.png") if p.stem[5:].isdigit() and int(p.stem[5:]) > newest]
    for p in later:
        p.unlink()
    if later and (samples / f"kimg-{newest:06d}.png").is_file():
        with replaced_atomically(samples / "latest.png") as tmp:
            shutil.copyfile(samples / f"kimg-{newest:06d}.png", tmp)
    for stale in (run_dir / "checkpoints").glob("ckpt-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def _after(line: str, tick: int, every_line: bool) -> bool:
    """Whether a tick-log line was written after tick ``tick`` (metrics.jsonl also holds results of
    ``progan-zoo evaluate``, which have no ``during_training``: those are kept)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    if not isinstance(record, dict) or not (every_line or record.get("during_training")):
        return False
    return isinstance(record.get("tick"), int) and record["tick"] > tick


def check_target(run_dir: Path, resume_ckpt: Path | None, restart: Restart | None = None) -> None:
    """Refuse to train into ``run_dir`` when that would mix two runs (module docstring). Writes nothing.
    ``restart``: the run is one that never checkpointed, started again (into its own directory or a new one)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir}: exists and is not a directory (hint: choose another --out)")
    if restart is not None and run_dir.exists() and run_dir.resolve() == restart.run_dir.resolve():
        if ckpt_io.latest_checkpoint(run_dir) is not None:  # another process got further meanwhile
            raise UsageError(f"{run_dir}: has written a checkpoint meanwhile (hint: `progan-zoo train --resume {run_dir}` "
                             "again continues from it)")
        return
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
    if resume_run is None and restart is not None:
        resume_run = restart.run_dir
    if resume_run is not None:
        raise UsageError(f"--out {run_dir}: already holds another run ({', '.join(held)}); resuming {resume_ckpt or resume_run} there "
                         "would mix two runs (hint: choose an empty --out, or leave --out out to continue in "
                         f"{resume_run})")
    if (ckpt_io.latest_checkpoint(run_dir) is None and (run_dir / "spec.yaml").is_file()
            and _left_by_a_run(run_dir, _read_json(run_dir / "run.json"))):
        raise UsageError(f"{run_dir}: already holds a run that stopped before its first checkpoint ({', '.join(held)}); "
                         f"nothing was changed (hint: `progan-zoo train --resume {run_dir}` starts it again from the "
                         "beginning with its recorded settings, or start a new run with --out NEW_DIR)")
    raise UsageError(f"{run_dir}: already holds a run ({', '.join(held)}); nothing was changed (hint: continue it with "
                     f"`progan-zoo train --resume {run_dir}`, or start a new run with --out NEW_DIR)")


def prior_settings(run_dir: Path) -> dict[str, float]:
    """``total_kimg`` and ``tick_kimg`` from a run's ``run.json``, or its lock's record when it has none yet
    (empty when missing or unreadable: then the spec's defaults apply, as for a new run)."""
    data = {**_lock_record(run_dir), **_read_json(run_dir / "run.json")}
    out = {}
    for key in ("total_kimg", "tick_kimg"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            out[key] = float(value)
    return out


def prior_init_from(run_dir: Path) -> dict | None:
    """The ``init_from`` record of a fine-tuning run's ``run.json`` (None: not fine-tuned, or unreadable)."""
    value = _read_json(run_dir / "run.json").get("init_from")
    return value if isinstance(value, dict) else None


@dataclass
class LockInfo:
    """What ``train.lock`` says about the process that holds it."""

    pid: int
    host: str
    started: str
    # The new run's settings (spec file, seed, data, mirror, total_kimg, tick_kimg): what `--resume`
    # starts it again with if it is killed before it writes spec.yaml and run.json.
    run: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "LockInfo | None":
        try:
            data = json.loads(text)
            run = data.get("run")
            return cls(pid=int(data["pid"]), host=str(data["host"]), started=str(data.get("started", "?")),
                       run=run if isinstance(run, dict) else {})
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

    def __init__(self, run_dir: Path, record: dict | None = None) -> None:
        self.path = Path(run_dir) / LOCK
        self.me = LockInfo(pid=os.getpid(), host=socket.gethostname(),
                           started=datetime.now().isoformat(timespec="seconds"), run=dict(record or {}))
        self.held = False
        self.made: list[Path] = []    # folders acquire() created: removed again by release() while empty

    def acquire(self) -> "RunLock":
        self.made = missing_dirs(self.path.parent)
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
        remove_empty(self.made)
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
        remove_empty(self.made)  # a run refused after the lock (its data, say) leaves no empty run directory

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim(run_dir: Path, resume_ckpt: Path | None, restart: Restart | None = None,
          record: dict | None = None) -> RunLock:
    """Check the directory, take its lock (``record``: the run's settings, ``LockInfo.run``), check again
    (another process may have written in between).

    A refusal before the lock writes nothing; a refusal after it removes the lock it made.
    """
    check_target(run_dir, resume_ckpt, restart)
    lock = RunLock(run_dir, record).acquire()
    try:
        check_target(run_dir, resume_ckpt, restart)
    except BaseException:
        lock.release()
        raise
    return lock
