"""Checkpoints: written whole or not at all, found by ``latest_checkpoint``, loaded without pickles.

    RUN/checkpoints/ckpt-000123456/        (images shown, 9 digits)
        G.safetensors  G_ema.safetensors  D.safetensors
        optim.safetensors                   Adam moments and step counts, keyed "G.<param>.exp_avg"
        state.json                          images shown, stage, alpha, lod, RNG states, spec sha256, ...

A checkpoint is written into ``ckpt-XXXXXXXXX.tmp/``, every file is fsynced, then the folder is
renamed; a kill at any moment leaves either the old set of checkpoints or the new one, never a
half-written folder without ``.tmp``. The test hook ``PROGAN_ZOO_KILL_IN_CHECKPOINT=K`` makes the
process SIGKILL itself halfway through writing its K-th checkpoint.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import signal
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from progan_zoo.errors import UserError
from progan_zoo.jsonl import read_json
from progan_zoo.fsutil import fsync_path

CKPT_RE = re.compile(r"^ckpt-(\d{9})$")
WEIGHT_FILES = ("G", "G_ema", "D", "optim")
_written = 0


def checkpoint_name(nimg: int) -> str:
    return f"ckpt-{int(nimg):09d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and CKPT_RE.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(CKPT_RE.match(p.name).group(1)))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def is_checkpoint_dir(path: Path) -> bool:
    """A checkpoint folder: it holds the EMA generator's weights."""
    return path.is_dir() and (path / "G_ema.safetensors").is_file()


def is_run_dir(path: Path) -> bool:
    """A run directory: its spec and a checkpoints folder."""
    return path.is_dir() and (path / "checkpoints").is_dir() and (path / "spec.yaml").is_file()


def find_checkpoint(path: str | Path, checkpoint: str | None = None) -> tuple[Path | None, Path]:
    """(run dir or None, checkpoint folder) for a run or a checkpoint path: the one checkpoint
    resolver of the package (resume, load, export and evaluate all come through here).

    ``checkpoint`` picks one of a run's: a directory name (``ckpt-000150000``), a path, a number of
    images shown, or ``latest`` (the default: the newest complete one).
    """
    from progan_zoo.errors import UsageError

    p = Path(path)
    if is_checkpoint_dir(p):
        run = p.parent.parent if p.parent.name == "checkpoints" else None
        return run, p
    if not is_run_dir(p):
        raise UsageError(f"{p}: no complete checkpoint here: neither a run directory (spec.yaml + checkpoints/) nor "
                         "a checkpoint (G_ema.safetensors + state.json); give the folder `progan-zoo train` wrote")
    if checkpoint in (None, "", "latest"):
        ck = latest_checkpoint(p)
        if ck is None:
            raise UserError(f"{p / 'checkpoints'}: no complete checkpoint yet (only .tmp ones or none); "
                            "wait for the trainer to write one")
        return p, ck
    cand = Path(checkpoint)
    if is_checkpoint_dir(cand):
        return p, cand
    if is_checkpoint_dir(p / "checkpoints" / checkpoint):
        return p, p / "checkpoints" / checkpoint
    if checkpoint.isdigit():
        named = p / "checkpoints" / checkpoint_name(int(checkpoint))
        if is_checkpoint_dir(named):
            return p, named
    names = ", ".join(c.name for c in list_checkpoints(p)) or "none"
    raise UsageError(f"{p}: no checkpoint {checkpoint!r} (complete ones: {names})")


def _maybe_die() -> None:
    want = os.environ.get("PROGAN_ZOO_KILL_IN_CHECKPOINT")
    if want and int(want) == _written:
        os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(run_dir: str | Path, nimg: int, tensors: dict[str, dict[str, torch.Tensor]], state: TrainState,
                    keep: int = 3) -> Path:
    """Write ``tensors`` (file stem -> name -> tensor) and ``state`` (JSON) atomically; keep the newest ``keep``."""
    global _written
    _written += 1
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / checkpoint_name(nimg)
    if final.exists():
        return final  # Same images shown, same training state: already written.
    tmp = folder / (final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for i, (stem, named) in enumerate(tensors.items()):
            path = tmp / f"{stem}.safetensors"
            save_file({k: v.detach().contiguous().cpu() for k, v in named.items()}, str(path))
            fsync_path(path)
            if i == 0:
                _maybe_die()
        (tmp / "state.json").write_text(state.to_json())
        fsync_path(tmp / "state.json")
        fsync_path(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # e.g. a full disk: free what was written; older checkpoints are untouched
        raise
    os.replace(tmp, final)
    fsync_path(folder)
    prune_checkpoints(run_dir, keep, final)
    for stale in folder.glob("ckpt-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def prune_checkpoints(run_dir: str | Path, keep: int, current: Path) -> list[Path]:
    """Delete all but the newest ``keep`` complete checkpoints (0 keeps all); ``current``, the one just
    written, is always among those kept, whatever the names of the others. Returns the deleted ones."""
    if keep <= 0:
        return []
    others = [c for c in list_checkpoints(run_dir) if c != current]
    doomed = others[:len(others) - (keep - 1)] if len(others) > keep - 1 else []
    for old in doomed:
        shutil.rmtree(old, ignore_errors=True)
    return doomed


@dataclass
class TrainState:
    """``state.json`` of a checkpoint: the one definition of the format, read and written only here."""

    nimg: int                              # Real images shown so far (the official cur_nimg).
    step: int                              # G steps taken.
    tick: int                              # Ticks completed.
    stage: int                             # Highest active resolution's index (0 is 4x4).
    resolution: int
    alpha: float                           # Newest block's fade weight.
    lod: float                             # Official level of detail.
    seed: int
    spec_sha256: str
    spec_name: str
    data: str                              # Dataset the run trains on.
    world_size: int
    optimizer: dict[str, Any]              # Name, learning rate, betas, eps (for readers; tensors are in optim.safetensors).
    rng: dict[str, Any]                    # Every random state (rng_state).
    versions: dict[str, str] = field(default_factory=dict)
    spec_resolved_sha256: str | None = None  # The resolved spec's sha256, the model's identity (None: older states).

    @property
    def kimg(self) -> float:
        return self.nimg / 1000.0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "kimg": self.kimg}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "state.json") -> "TrainState":
        data = json.loads(text)
        names = {f.name for f in fields(cls)}
        missing = sorted(f.name for f in fields(cls) if f.name not in data and f.name != "versions")
        if missing:
            raise UserError(f"{where}: not a progan-zoo checkpoint state (missing {', '.join(missing)}) "
                            "(hint: resume from a checkpoint folder written by progan-zoo train)")
        return cls(**{k: v for k, v in data.items() if k in names})


def read_json_object(path: Path) -> dict[str, Any]:
    """A run's or a checkpoint's JSON file as a dict: {} when absent or not an object (a hand-made
    checkpoint may lack state.json, a run run.json); bad JSON is an error naming the file."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class StateFacts:
    """The few facts a reader outside training (export) takes from a checkpoint's state.json.

    ``TrainState`` is the format this trainer writes; a state.json written by hand may lack most of its
    fields, so this reads only what export needs, each under the one name the trainer writes (``nimg``
    for the images shown), and takes what is missing or of the wrong type as not recorded."""

    images_shown: int | None               # None: not recorded.
    stage: int | None                      # None: not recorded (export then takes the last stage).
    alpha: float
    spec_sha256: Any                       # None when not recorded; compared as text.

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "StateFacts":
        nimg = state.get("nimg")
        shown = int(nimg) if isinstance(nimg, (int, float)) and not isinstance(nimg, bool) else None
        stage, alpha = state.get("stage"), state.get("alpha")
        return cls(
            images_shown=shown,
            stage=int(stage) if isinstance(stage, (int, float)) else None,
            alpha=float(alpha) if isinstance(alpha, (int, float)) else 1.0,
            spec_sha256=state.get("spec_sha256") or None,
        )


@dataclass
class Checkpoint:
    """A loaded checkpoint: the folder, its typed state and a reader for its safetensors files."""

    path: Path
    state: TrainState

    def tensors(self, stem: str) -> dict[str, torch.Tensor]:
        file = self.path / f"{stem}.safetensors"
        try:
            return load_file(str(file))
        except Exception as exc:  # safetensors raises its own error types
            raise UserError(f"{file}: cannot read ({exc.__class__.__name__}: {exc}) "
                            "(hint: resume from an older checkpoint)") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Open a checkpoint folder, or a run directory's newest checkpoint."""
    _, ckpt = find_checkpoint(path)
    try:
        state = TrainState.from_json((ckpt / "state.json").read_text(), str(ckpt / "state.json"))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"{ckpt / 'state.json'}: cannot read ({exc.__class__.__name__}) "
                        "(hint: resume from an older checkpoint)") from None
    return Checkpoint(ckpt, state)


# ----------------------------------------------------------------------------------------------
# Optimizer and RNG state as plain tensors and JSON.

def optimizer_tensors(opt: torch.optim.Optimizer, named: dict[str, torch.nn.Parameter], prefix: str) -> dict[str, torch.Tensor]:
    """Adam state keyed by parameter name: ``{prefix}.{name}.{exp_avg|exp_avg_sq|step}``."""
    out = {}
    for name, p in named.items():
        for key, value in opt.state.get(p, {}).items():
            out[f"{prefix}.{name}.{key}"] = value if torch.is_tensor(value) else torch.tensor(float(value))
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, named: dict[str, torch.nn.Parameter], prefix: str,
                           tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of ``optimizer_tensors``; parameters without saved state start fresh."""
    opt.state.clear()
    for name, p in named.items():
        state = {}
        for key in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            t = tensors.get(f"{prefix}.{name}.{key}")
            if t is not None:
                # Adam keeps 'step' on the CPU unless capturable/fused.
                state[key] = t.clone() if key == "step" else t.to(p.device, p.dtype).clone()
        if state:
            opt.state[p] = state


def encode_bytes(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def decode_bytes(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def rng_state(gen: torch.Generator, loader: Any, device: torch.device) -> dict:
    """Every random state a run touches, as JSON: the step generator (latents, mixing factors), the
    global torch/numpy/python generators, CUDA's, and the data sampler's (epoch, position)."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "step_generator": encode_bytes(gen.get_state()),
        "torch_cpu": encode_bytes(torch.get_rng_state()),
        "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}},
        "python": [py_version, list(py_internal), py_gauss],
        "data_sampler": loader.state_dict(),
    }
    if device.type == "cuda":
        state["torch_cuda"] = encode_bytes(torch.cuda.get_rng_state(device))
    return state


def set_rng_state(state: dict, gen: torch.Generator, loader: Any, device: torch.device) -> None:
    """Inverse of ``rng_state`` (``loader``: the run's ``RealLoader``)."""
    gen.set_state(decode_bytes(state["step_generator"]))
    torch.set_rng_state(decode_bytes(state["torch_cpu"]))
    np_state = state["numpy"]
    np.random.set_state({**np_state, "state": {"key": np.array(np_state["state"]["key"], dtype=np.uint32),
                                               "pos": np_state["state"]["pos"]}})
    py_version, py_internal, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_internal), py_gauss))
    loader.load_state_dict(state["data_sampler"])
    if device.type == "cuda" and "torch_cuda" in state:
        torch.cuda.set_rng_state(decode_bytes(state["torch_cuda"]), device)
