"""``progan-zoo export``: a run, a checkpoint or a saved model (a lower stage of it) -> a saved model folder.

Reading is ``sources`` (the checkpoint or folder, verified), writing is ``folder`` (the atomic folder
and its card); this module decides what the new record says.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from progan_zoo.errors import UsageError

from . import records as R
from .folder import check_out, finish_folder, folder_tensors, fresh_tmp


def open_source(path: str | Path, checkpoint: str | None = None, with_training: bool = False) -> R.Source:
    """A saved model folder, a run or a checkpoint, as an export source."""
    from .sources.checkpoint import open_checkpoint
    from .sources.folder import open_saved

    p = Path(path)
    if R.is_model_folder(p):
        if checkpoint:
            raise UsageError(f"{p}: --checkpoint applies to run directories, not saved model folders")
        return open_saved(p, with_training)
    return open_checkpoint(p, checkpoint, with_training)


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
    from .model import ZooGenerator, truncate_generator
    from .weights import save_tensors

    out = Path(out)
    check_out(out, force, "OUT")
    src = open_source(source, checkpoint, with_training)
    spec = src.compiled.spec
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
        (tmp / R.SPEC).write_bytes(src.spec_text.encode("utf-8"))
        # Only {"format": "pt"} in the header: safetensors writes its metadata map in no fixed order, and
        # the same checkpoint must export to the same bytes (the same sha256). metadata.json has the rest.
        save_tensors(tensors, tmp / R.WEIGHTS, metadata={"format": "pt"})
        old = src.meta
        run_info = {k: src.run[k] for k in ("seed", "world_size", "device", "total_kimg", "command", "data") if k in src.run}
        training = dict(old.training or {}) if old else {}
        if src.kind == "checkpoint":
            training = {"run": src.run_dir.name if src.run_dir else None,
                        "checkpoint": src.checkpoint.name if src.checkpoint else None, **run_info}
        ds = dict(old.dataset) if old and old.dataset and not dataset else R.dataset_info(spec, dataset)
        meta = R.ModelMetadata(
            name=name or out.name,
            spec=R.spec_record(spec, src.compiled.sha256),
            resolution=res,
            stage=st,
            alpha=alpha,
            spec_resolution=spec.architecture.resolution,
            image_channels=G.image_channels,
            z_dim=G.z_dim,
            images_shown=src.images_shown,
            dataset=ds,
            license=(license or (old.license if old else None) or spec.license).lower(),
            weights=R.weights_record(tmp / R.WEIGHTS, contents),
            training=training,
            samples={"file": R.SAMPLES, "n": samples, "seed": seed},
            # Scores of a different resolution do not describe this export; keep them only at the same one.
            evaluation=list(old.evaluation or []) if old and st == int(old.stage) else [],
        )
        finish_folder(tmp, out, ZooGenerator(G, spec, src.spec_text, meta, alpha=alpha), samples, seed)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
