"""``load``: a registered name, a saved model folder, ``hf-hub:org/repo[@revision]``, or a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from progan_zoo.errors import UserError

from progan_zoo.train.checkpoint import is_checkpoint_dir, is_run_dir

from . import records as R
from .registry import HUB_PREFIX, parse_hub_ref, resolve
from .sources.folder import open_folder

if TYPE_CHECKING:
    from .model import ZooGenerator


def load(name_or_path: str | Path, *, resolution: int | None = None, device: str | None = None,
         checkpoint: str | None = None) -> "ZooGenerator":
    """Load a generator that samples images ready to save.

    ``name_or_path`` is a name from the registries (``list_models()``), a saved model folder,
    ``hf-hub:org/repo`` or ``hf-hub:org/repo@revision``, or a training run / checkpoint directory
    (its newest checkpoint's EMA generator; ``checkpoint`` picks another). ``resolution`` gives the
    lower-resolution generator inside the model. A saved model's weights are checked against the
    sha256 in its metadata before they are read, and only safetensors are read. A registered official
    network that is not imported yet is downloaded, verified and imported first (``download.py``),
    unless downloads are off (``HF_HUB_OFFLINE`` / ``PROGAN_ZOO_OFFLINE``).
    """
    ref = str(name_or_path)
    if ref.startswith(HUB_PREFIX):
        return _from_hub(ref, resolution, device)
    p = Path(ref).expanduser()
    if p.exists():
        return _from_path(p, resolution, device, checkpoint)
    if "/" in ref or "\\" in ref or ref.startswith("."):
        raise UserError(f"{ref}: no such folder (give a saved model folder, a run directory, a registered "
                        "name, or hf-hub:ORG/NAME)")
    entry = resolve(ref)
    if entry.kind == "unpublished":
        raise UserError(f"{entry.name}: its weights are not published yet (they will be at "
                        f"hf-hub:{entry.location}); train it yourself from the spec "
                        f"{'(' + entry.description + ') ' if entry.description else ''}and export it, or pick a "
                        "published model from `progan-zoo models`")
    if entry.kind == "official":
        if not entry.imported:
            from .download import fetch_official, offline

            if offline():  # the message of a copy that never downloads, as before downloads existed
                raise UserError(f"{entry.name}: the official network is not imported yet; download "
                                f"{entry.official_file} from {entry.download} and run `{entry.import_command}` "
                                f"(it writes {entry.location})")
            fetch_official(entry)
        return open_folder(entry.location, resolution=resolution, device=device, source=entry.name)
    if entry.kind == "hub":
        model = _from_hub(f"{HUB_PREFIX}{entry.location}@{entry.revision}", resolution, device)
    else:
        if not Path(entry.location).is_dir():
            raise UserError(f"{entry.name}: registered in {entry.registry} at {entry.location}, which does not "
                            "exist (fix or remove the entry: `progan-zoo models --remove NAME`)")
        model = open_folder(entry.location, resolution=resolution, device=device, source=entry.name)
    return model


def _from_hub(ref: str, resolution: int | None, device: str | None) -> "ZooGenerator":
    from .hub import download

    repo, revision = parse_hub_ref(ref)
    local = download(repo, revision)
    return open_folder(local, resolution=resolution, device=device, source=ref)


def _from_path(p: Path, resolution: int | None, device: str | None, checkpoint: str | None) -> "ZooGenerator":
    if R.is_model_folder(p):
        return open_folder(p, resolution=resolution, device=device)
    if is_run_dir(p) or is_checkpoint_dir(p):
        return from_checkpoint(p, checkpoint=checkpoint, resolution=resolution, device=device)
    raise UserError(f"{p}: not a saved model folder (no {R.METADATA}), run directory or checkpoint; "
                    "make a saved model with `progan-zoo export RUN_DIR OUT`")


def from_checkpoint(path: str | Path, *, checkpoint: str | None = None, resolution: int | None = None,
                    device: str | None = None) -> "ZooGenerator":
    """The EMA generator of a run's checkpoint, at the stage training has reached (or ``resolution``)."""
    import torch

    from .export import pick_stage
    from .model import ZooGenerator
    from .sources.checkpoint import open_checkpoint

    src = open_checkpoint(path, checkpoint)
    spec = src.compiled.spec
    st = pick_stage(src.G_ema, src.stage, resolution, None)
    G = src.G_ema.at_stage(st)
    meta = R.ModelMetadata(
        name=src.run_dir.name if src.run_dir else src.checkpoint.name,
        spec={k: v for k, v in R.spec_record(spec, src.compiled.sha256).items() if k != "file"},
        resolution=G.resolution, stage=st, alpha=src.alpha if st == src.stage else 1.0,
        spec_resolution=spec.architecture.resolution, image_channels=G.image_channels, z_dim=G.z_dim,
        images_shown=src.images_shown, dataset=R.dataset_info(spec), license=spec.license,
        training={"run": str(src.run_dir) if src.run_dir else None, "checkpoint": str(src.checkpoint)},
    )
    model = ZooGenerator(G, spec, src.spec_text, meta, alpha=meta.alpha, source=str(src.checkpoint))
    return model.to(torch.device(device)) if device else model
