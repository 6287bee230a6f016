"""Reading a saved model folder (layout: ``records``): verified, then built as a ``ZooGenerator``.

Reading one checks, in order: metadata.json parses and has our format; spec.yaml's sha256 is the
one recorded; the weights file is well-formed safetensors; its sha256 is the one recorded; its
tensor names and shapes are exactly those the spec builds at the recorded stage. Only then are
tensors read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UserError

from ..records import METADATA, SPEC, ModelMetadata, Source, read_metadata
from ..weights import check_sha256, load_checked, read_header

if TYPE_CHECKING:
    import torch

    from progan_zoo.compiler import CompiledSpec

    from ..model import ZooGenerator


def compile_folder_spec(folder: str | Path, meta: ModelMetadata, until: str = "graph") -> "CompiledSpec":
    """Compile spec.yaml after checking its sha256 against the record (an edited spec is refused
    before it is validated)."""
    from progan_zoo.compiler import compile_spec

    path = Path(folder) / SPEC
    if not path.is_file():
        raise UserError(f"{path}: missing; a saved model needs the exact spec it was trained from "
                        "(export the model again with `progan-zoo export`)")

    def same_spec(raw: Any) -> None:
        want = (meta.spec or {}).get("sha256")
        if raw.sha256 != want:
            raise UserError(f"{path}: sha256 {raw.sha256[:16]}... differs from {METADATA}'s spec.sha256 "
                            f"{str(want)[:16]}...; the spec was edited or replaced after export (restore the exact "
                            "spec the weights were trained with, or export the model again)")

    def same_model(c: Any) -> None:
        resolved = (meta.spec or {}).get("resolved_sha256")
        if resolved is not None and c.resolved_sha256 != resolved:  # folders before issue 18 record the text hash only
            raise UserError(f"{path}: resolved sha256 {c.resolved_sha256[:16]}... differs from {METADATA}'s "
                            f"spec.resolved_sha256 {str(resolved)[:16]}...: this progan-zoo reads the spec as "
                            "another model than the one exported (upgrade progan-zoo, or export the model again)")

    compiled = compile_spec(path, until=until, after_load=same_spec)
    same_model(compiled)
    return compiled


def read_folder(folder: str | Path) -> tuple[ModelMetadata, "CompiledSpec", Any]:
    """(record, compiled spec, generator cut to the recorded stage with its weights), verified (see the
    module docstring for the checks, made in that order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    meta = read_metadata(folder)
    compiled = compile_folder_spec(folder, meta)
    wfile = folder / meta.weights_file
    header = read_header(wfile)
    check_sha256(wfile, meta.weights.get("sha256"), folder / METADATA)

    full = compiled.build_generator()
    stage = int(meta.stage)
    if not 0 <= stage < full.num_stages or full.resolutions[stage] != int(meta.resolution):
        raise UserError(f"{folder / METADATA}: stage {stage} / resolution {meta.resolution} do not exist in "
                        f"{SPEC} (its resolutions are {full.resolutions}); export the model again")
    G = full.at_stage(stage)
    load_checked(G, wfile, folder / SPEC, header=header)
    return meta, compiled, G


def open_folder(folder: str | Path, *, resolution: int | None = None, device: str | None = None,
                source: str | None = None) -> "ZooGenerator":
    """Verify a saved model folder and build its generator, which carries the folder's record."""
    import torch

    from ..model import ZooGenerator

    meta, compiled, G = read_folder(folder)
    model = ZooGenerator(G, compiled.spec, compiled.raw.text, meta, alpha=float(meta.alpha),
                         source=source or str(folder))
    if resolution is not None and resolution != model.resolution:
        model = model.at_resolution(int(resolution))
    if device is not None:
        model = model.to(torch.device(device))
    return model


def open_saved(path: str | Path, with_training: bool = False) -> Source:
    """A saved model folder as an export source (for exporting a lower stage of it); ``with_training``
    also reads the raw G and D the folder holds."""
    from ..weights import load_tensors

    meta, compiled, G_ema = read_folder(path)
    # The folder's generator is already cut to its stage; stage indices stay those of the spec.
    src = Source(kind="folder", path=Path(path), compiled=compiled, spec_file=Path(path) / SPEC,
                 G_ema=G_ema.eval().requires_grad_(False), stage=int(meta.stage), alpha=float(meta.alpha),
                 images_shown=meta.images_shown, meta=meta)
    if with_training:
        wfile = Path(path) / meta.weights_file
        if "G" in meta.weights_contents:
            G = compiled.build_generator().at_stage(src.stage)
            G.load_state_dict(load_tensors(wfile, "G."), strict=True)
            src.G = G
        if "D" in meta.weights_contents:
            D = compiled.build_discriminator()
            state = load_tensors(wfile, "D.")
            D.load_state_dict({**D.state_dict(), **state}, strict=True)
            src.D = D
    return src
