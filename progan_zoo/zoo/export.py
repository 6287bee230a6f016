"""Runs and checkpoints -> saved model folders (``progan-zoo export``).

A run directory (docs/architecture.md) holds ``spec.yaml`` and ``checkpoints/ckpt-NNNNNNNNN/`` with
``G_ema.safetensors``, ``G.safetensors``, ``D.safetensors`` and ``state.json``; a checkpoint is
written to a ``.tmp`` directory and renamed when whole, so ``.tmp`` directories are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from progan_zoo.errors import UsageError, UserError

from progan_zoo.train.checkpoint import StateFacts, latest_checkpoint, list_checkpoints  # one idea of a complete checkpoint

from . import folder as F
from .weights import read_header

DATASET_NAMES = {"mnist": "MNIST", "lfw-100": "LFW (first 100 faces)"}


# ---------------------------------------------------------------------------------------- finding
def is_checkpoint_dir(path: Path) -> bool:
    return path.is_dir() and (path / "G_ema.safetensors").is_file()


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "checkpoints").is_dir() and (path / "spec.yaml").is_file()


def find_checkpoint(path: str | Path, checkpoint: str | None = None) -> tuple[Path | None, Path]:
    """(run dir or None, checkpoint dir) for a run or checkpoint path.

    ``checkpoint`` picks one of a run's: a directory name (``ckpt-000150000``), a path, a number of
    images shown, or ``latest`` (the default).
    """
    p = Path(path)
    if is_checkpoint_dir(p):
        run = p.parent.parent if p.parent.name == "checkpoints" else None
        return run, p
    if not is_run_dir(p):
        raise UsageError(f"{p}: neither a run directory (spec.yaml + checkpoints/) nor a checkpoint "
                         "(G_ema.safetensors + state.json); give the folder `progan-zoo train` wrote")
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
        named = p / "checkpoints" / f"ckpt-{int(checkpoint):09d}"
        if is_checkpoint_dir(named):
            return p, named
    names = ", ".join(c.name for c in list_checkpoints(p)) or "none"
    raise UsageError(f"{p}: no checkpoint {checkpoint!r} (complete ones: {names})")


# ---------------------------------------------------------------------------------------- loading
@dataclass
class Source:
    """Weights and facts gathered from a run, a checkpoint or a saved model folder."""

    kind: str                               # "checkpoint" or "folder"
    path: Path
    spec_text: str
    spec_file: Path
    G_ema: Any                              # full-depth Generator with the EMA weights
    stage: int                              # highest trained stage
    alpha: float
    images_shown: int | None
    run_dir: Path | None = None
    checkpoint: Path | None = None
    G: Any = None                           # raw G, if available
    D: Any = None                           # D, if available
    meta: dict[str, Any] = field(default_factory=dict)   # a folder's metadata
    run: dict[str, Any] = field(default_factory=dict)    # run.json


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _load_state(net: Any, file: Path, spec_file: Path) -> None:
    from .folder import check_weights_match
    from .weights import load_tensors

    header = read_header(file)
    check_weights_match(net, header, file, spec_file)
    net.load_state_dict(load_tensors(file), strict=True)


def open_checkpoint(path: str | Path, checkpoint: str | None = None, with_training: bool = False) -> Source:
    """Build the generator (and optionally raw G and D) of a run's or a checkpoint's weights."""
    from progan_zoo.compiler.build import build
    from progan_zoo.compiler.graph import to_graph
    from progan_zoo.compiler.load import load
    from progan_zoo.compiler.validate import validate

    run, ck = find_checkpoint(path, checkpoint)
    spec_file = (run / "spec.yaml") if run is not None else (ck / "spec.yaml")
    if not spec_file.is_file():
        raise UserError(f"{ck}: no spec.yaml beside this checkpoint and no run directory above it; "
                        "give the run directory instead")
    raw = load(spec_file)
    spec = validate(raw)
    facts = StateFacts.from_dict(_read_json(ck / "state.json"))
    want = facts.spec_sha256
    if want and want != raw.sha256:
        raise UserError(f"{spec_file}: sha256 {raw.sha256[:16]}... differs from {ck / 'state.json'}'s spec sha256 "
                        f"{str(want)[:16]}...; the run's spec was edited after training (restore it)")
    graph = to_graph(spec)
    G_ema, D = build(graph)
    _load_state(G_ema, ck / "G_ema.safetensors", spec_file)
    stage = facts.stage if facts.stage is not None else G_ema.num_stages - 1
    src = Source(kind="checkpoint", path=Path(path), spec_text=raw.text, spec_file=spec_file, G_ema=G_ema,
                 stage=stage, alpha=facts.alpha, images_shown=facts.images_shown, run_dir=run, checkpoint=ck,
                 run=_read_json(run / "run.json") if run else {})
    if with_training:
        G, _ = build(graph)
        for net, name in ((G, "G.safetensors"), (D, "D.safetensors")):
            f = ck / name
            if f.is_file():
                _load_state(net, f, spec_file)
                if name.startswith("G"):
                    src.G = net
                else:
                    src.D = net
    return src


def open_saved(path: str | Path, with_training: bool = False) -> Source:
    """A saved model folder as an export source (for exporting a lower stage of it)."""
    from progan_zoo.compiler.build import build_discriminator, build_generator
    from progan_zoo.compiler.graph import to_graph

    from .model import truncate_generator
    from .weights import load_tensors

    model = F.open_folder(path)
    meta = model.metadata
    spec_file = Path(path) / F.SPEC
    src = Source(kind="folder", path=Path(path), spec_text=model.spec_text, spec_file=spec_file, G_ema=model.G,
                 stage=int(meta["stage"]), alpha=float(meta.get("alpha", 1.0)),
                 images_shown=meta.get("images_shown"), meta=meta)
    if with_training:
        wfile = Path(path) / meta["weights"].get("file", F.WEIGHTS)
        contents = meta["weights"].get("contents", ["G_ema"])
        graph = to_graph(model.spec)
        if "G" in contents:
            G = truncate_generator(build_generator(graph), src.stage)
            G.load_state_dict(load_tensors(wfile, "G."), strict=True)
            src.G = G
        if "D" in contents:
            D = build_discriminator(graph)
            state = load_tensors(wfile, "D.")
            D.load_state_dict({**D.state_dict(), **state}, strict=True)
            src.D = D
    # The folder's generator is already cut to its stage; stage indices stay those of the spec.
    return src


def open_source(path: str | Path, checkpoint: str | None = None, with_training: bool = False) -> Source:
    p = Path(path)
    if F.is_model_folder(p):
        if checkpoint:
            raise UsageError(f"{p}: --checkpoint applies to run directories, not saved model folders")
        return open_saved(p, with_training)
    return open_checkpoint(p, checkpoint, with_training)


# ---------------------------------------------------------------------------------------- writing
def _stage_keys(state: dict[str, Any], max_res: int) -> dict[str, Any]:
    """Tensors of the blocks up to ``max_res`` (keys start with ``b{res}.``)."""
    out = {}
    for k, v in state.items():
        m = re.match(r"^b(\d+)\.", k)
        if m and int(m.group(1)) <= max_res:
            out[k] = v
    return out


def dataset_info(spec: Any, override: str | None = None) -> dict[str, Any]:
    src = spec.data.source
    name = override or (src if "/" not in src and "\\" not in src else Path(src.rstrip("/\\")).stem)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower() or "unknown"
    return {"name": name, "display_name": DATASET_NAMES.get(name, name), "source": src,
            "resolution": spec.data.resolution, "channels": spec.data.channels}


def pick_stage(G: Any, trained_stage: int, resolution: int | None, stage: int | None) -> int:
    """Resolve --resolution/--stage against what the source has been trained to."""
    if resolution is not None and stage is not None:
        raise UsageError("give --resolution or --stage, not both")
    if resolution is not None:
        if resolution not in G.resolutions:
            raise UsageError(f"--resolution {resolution}: the spec's resolutions are "
                             f"{', '.join(map(str, G.resolutions))}")
        stage = G.stage_of(resolution)
    if stage is None:
        return trained_stage
    if not 0 <= stage < len(G.resolutions):
        raise UsageError(f"--stage {stage}: the spec has stages 0..{len(G.resolutions) - 1}")
    if stage > trained_stage:
        raise UsageError(f"stage {stage} ({G.resolutions[stage]}x{G.resolutions[stage]}) has not been trained yet: "
                         f"the source reached stage {trained_stage} ({G.resolutions[trained_stage]}x"
                         f"{G.resolutions[trained_stage]}); export that or a lower one")
    return stage


def export_model(
    source: str | Path,
    out: str | Path,
    *,
    checkpoint: str | None = None,
    resolution: int | None = None,
    stage: int | None = None,
    name: str | None = None,
    dataset: str | None = None,
    license: str | None = None,
    with_training: bool = False,
    samples: int = 64,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write a saved model folder from a run, a checkpoint or another saved model (a lower stage of it)."""
    from progan_zoo.compiler.load import load_text
    from progan_zoo.compiler.validate import validate

    from .model import ZooGenerator, truncate_generator
    from .weights import save_tensors

    out = Path(out)
    check_out(out, force, "OUT")
    src = open_source(source, checkpoint, with_training)
    spec = validate(load_text(src.spec_text, str(src.spec_file)))
    G_full = src.G_ema
    st = pick_stage(G_full, src.stage, resolution, stage)
    res = G_full.resolutions[st]
    alpha = src.alpha if st == src.stage else 1.0
    G = truncate_generator(G_full, st)

    tensors, contents = folder_tensors(
        G, res, G=src.G.state_dict() if with_training and src.G is not None else None,
        D=src.D.state_dict() if with_training and src.D is not None else None)

    tmp = fresh_tmp(out, ".export-tmp")
    try:
        (tmp / F.SPEC).write_bytes(src.spec_text.encode("utf-8"))
        raw_sha = load_text(src.spec_text).sha256
        # Only {"format": "pt"} in the header: safetensors writes its metadata map in no fixed order, and
        # the same checkpoint must export to the same bytes (the same sha256). metadata.json has the rest.
        save_tensors(tensors, tmp / F.WEIGHTS, metadata={"format": "pt"})
        old = src.meta
        run_info = {k: src.run[k] for k in ("seed", "world_size", "device", "total_kimg", "command", "data", "init_from")
                    if k in src.run and (k != "init_from" or src.run[k])}   # init_from: fine-tuned runs only
        training = dict(old.get("training") or {})
        if src.kind == "checkpoint":
            training = {"run": src.run_dir.name if src.run_dir else None,
                        "checkpoint": src.checkpoint.name if src.checkpoint else None, **run_info}
        ds = dict(old["dataset"]) if old.get("dataset") and not dataset else dataset_info(spec, dataset)
        meta = F.ModelMetadata(
            name=name or out.name,
            spec=F.spec_record(spec, raw_sha),
            resolution=res,
            stage=st,
            alpha=alpha,
            spec_resolution=spec.architecture.resolution,
            image_channels=G.image_channels,
            z_dim=G.z_dim,
            images_shown=src.images_shown,
            dataset=ds,
            license=(license or old.get("license") or spec.license).lower(),
            weights=F.weights_record(tmp / F.WEIGHTS, contents),
            training=training,
            samples={"file": F.SAMPLES, "n": samples, "seed": seed},
            # Scores of a different resolution do not describe this export; keep them only at the same one.
            evaluation=list(old.get("evaluation") or []) if old and st == int(old.get("stage", -1)) else [],
        ).to_dict()
        finish_folder(tmp, out, ZooGenerator(G, spec, src.spec_text, meta, alpha=alpha), meta, samples, seed)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_out(out: Path, force: bool, option: str) -> None:
    """A saved model folder may be written to ``out``: it does not exist, or ``force`` replaces a saved
    model folder or an empty folder there (never anything else). ``option`` names the argument."""
    if out.exists():
        if not force:
            raise UsageError(f"{out}: already exists; choose another {option} or pass --force to replace it")
        if not (F.is_model_folder(out) or (out.is_dir() and not any(out.iterdir()))):
            raise UsageError(f"{out}: exists and is not a saved model folder; refusing to replace it")


def folder_tensors(G_ema: Any, res: int, **training: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """model.safetensors' tensors and its ``contents`` list: ``G_ema``'s state unprefixed, then each
    given training state (``G=``, ``D=``; None: left out) under its prefix, cut to the blocks up to ``res``."""
    tensors, contents = dict(G_ema.state_dict()), ["G_ema"]
    for prefix, state in training.items():
        if state is not None:
            tensors.update({f"{prefix}.{k}": v for k, v in _stage_keys(state, res).items()})
            contents.append(prefix)
    return tensors, contents


def fresh_tmp(out: Path, suffix: str) -> Path:
    """An empty folder beside ``out`` to write the model into; ``finish_folder`` renames it to ``out``."""
    tmp = out.with_name(out.name + suffix)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def finish_folder(tmp: Path, out: Path, model: Any, meta: dict[str, Any], samples: int, seed: int,
                  batch_size: int | None = None) -> None:
    """The last steps of every saved-model folder: sample grid, metadata and card into ``tmp``, then
    ``tmp`` takes the place of ``out`` (a folder is written whole or not at all)."""
    from .images import save_grid

    kw = {} if batch_size is None else {"batch_size": batch_size}
    save_grid(model.sample(samples, seed=seed, **kw), tmp / F.SAMPLES)
    F.write_metadata(tmp, meta)
    write_card(tmp, meta)
    put_in_place(tmp, out)


def put_in_place(tmp: Path, out: Path) -> None:
    """``tmp``, a whole folder, takes the place of ``out`` (a folder is written whole or not at all)."""
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)


def write_card(folder: str | Path, meta: dict[str, Any] | None = None, hub_repo: str | None = None) -> Path:
    """(Re-)render README.md from metadata.json."""
    from .card import render_card

    meta = meta if meta is not None else F.read_metadata(folder)
    path = Path(folder) / F.CARD
    path.write_text(render_card(meta, hub_repo=hub_repo or (meta.get("hub") or {}).get("repo")), encoding="utf-8")
    return path
