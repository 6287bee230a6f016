"""``progan-zoo export``: a run, a checkpoint or a saved model (a lower stage of it) -> a saved model folder.

Reading is ``sources`` (the checkpoint or folder, verified), writing is ``folder`` (the atomic folder
and its card); this module decides what the new record says.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UsageError

from . import records as R
from .folder import check_out, write_folder

if TYPE_CHECKING:
    from .model import ZooGenerator


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


def export_model(source: str | Path, out: str | Path, *, force: bool = False, **options: Any) -> Path:
    """Write a saved model folder from a run, a checkpoint or another saved model (a lower stage of it);
    returns ``out``. ``out`` must not exist, unless ``force`` (which replaces a saved model folder or an
    empty folder, never anything else). ``options``: those of ``write_export`` (checkpoint, resolution,
    stage, name, dataset, license, with_training, samples, seed)."""
    out = Path(out)
    check_out(out, force, "OUT")
    write_export(source, out, **options)
    return out


def write_export(
    source: str | Path,
    out: Path,
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
) -> "ZooGenerator":
    """Write the saved model folder ``out`` from ``source`` and return the model in it, carrying the record
    as written. ``out`` is not checked (``export_model`` checks it; publish writes into a folder of its own).

    ``checkpoint``: which checkpoint of a run (default the latest); ``resolution`` or ``stage``: export a
    lower stage; ``name``, ``dataset``, ``license``: override the record's; ``with_training``: also the
    raw G and D (for fine-tuning); ``samples``, ``seed``: the sample grid."""
    from .model import ZooGenerator
    from .sources import open_source

    src = open_source(source, checkpoint, with_training)
    spec = src.compiled.spec
    G_full = src.G_ema
    st = pick_stage(G_full, src.stage, resolution, stage)
    res = G_full.resolutions[st]
    alpha = src.alpha if st == src.stage else 1.0
    G = G_full.at_stage(st)

    old = src.meta
    run_info = {k: src.run[k] for k in ("seed", "world_size", "device", "total_kimg", "command", "data", "init_from")
                if k in src.run and (k != "init_from" or src.run[k])}   # init_from: fine-tuned runs only
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
        training=training,
        samples={"file": R.SAMPLES, "n": samples, "seed": seed},
        # Scores of a different resolution do not describe this export; keep them only at the same one.
        evaluation=list(old.evaluation or []) if old and st == int(old.stage) else [],
    )
    model = ZooGenerator(G, spec, src.spec_text, meta, alpha=alpha, source=str(out))
    write_folder(out, model, ".export-tmp", samples=samples, seed=seed,
                 G=src.G.state_dict() if with_training and src.G is not None else None,
                 D=src.D.state_dict() if with_training and src.D is not None else None)
    return model
