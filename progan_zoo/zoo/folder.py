"""Writing a saved model folder (layout: ``records``): weights, the exact spec, metadata, card, samples.

Every writer (export, import, publish) fills a fresh folder beside the target and renames it into
place when whole (``whole_folder``), so a folder is written whole or not at all.
The card is always rendered from the record being written, never from a file read back.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UsageError

from .records import CARD, METADATA, SAMPLES, SPEC, WEIGHTS, ModelMetadata, is_model_folder

if TYPE_CHECKING:
    from .model import ZooGenerator


def check_out(out: Path, force: bool, option: str) -> None:
    """A saved model folder may be written to ``out``: it does not exist, or ``force`` replaces a saved
    model folder or an empty folder there (never anything else). ``option`` names the argument."""
    if out.exists():
        if not force:
            raise UsageError(f"{out}: already exists; choose another {option} or pass --force to replace it")
        if not (is_model_folder(out) or (out.is_dir() and not any(out.iterdir()))):
            raise UsageError(f"{out}: exists and is not a saved model folder; refusing to replace it")


def _stage_keys(state: dict[str, Any], max_res: int) -> dict[str, Any]:
    """Tensors of the blocks up to ``max_res`` (keys start with ``b{res}.``)."""
    out = {}
    for k, v in state.items():
        m = re.match(r"^b(\d+)\.", k)
        if m and int(m.group(1)) <= max_res:
            out[k] = v
    return out


def folder_tensors(G_ema: Any, res: int, **training: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """model.safetensors' tensors and its ``contents`` list: ``G_ema``'s state unprefixed, then each
    given training state (``G=``, ``D=``; None: left out) under its prefix, cut to the blocks up to ``res``."""
    tensors, contents = dict(G_ema.state_dict()), ["G_ema"]
    for prefix, state in training.items():
        if state is not None:
            tensors.update({f"{prefix}.{k}": v for k, v in _stage_keys(state, res).items()})
            contents.append(prefix)
    return tensors, contents


@contextmanager
def whole_folder(out: Path, suffix: str) -> Iterator[Path]:
    """An empty folder beside ``out`` (named ``out`` + ``suffix``) to fill in the ``with`` block: when the
    block ends normally it takes the place of ``out``; after an error it is removed and ``out`` is left as
    it was. So a folder is written whole or not at all."""
    tmp = out.with_name(out.name + suffix)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)


def write_folder(out: Path, model: "ZooGenerator", suffix: str, *, samples: int, seed: int,
                 batch_size: int | None = None, **training: dict[str, Any] | None) -> None:
    """Write the saved model folder of ``model`` (a ZooGenerator carrying its record, whose ``weights``
    entry is filled in here): the exact spec, the weights (``training``: the raw ``G=`` and ``D=``
    states, None to leave out), the sample grid, metadata.json and the card, in a ``whole_folder``."""
    from .card import render_card
    from .images import save_grid
    from .weights import save_tensors, sha256_file

    tensors, contents = folder_tensors(model.G, model.resolution, **training)
    with whole_folder(out, suffix) as tmp:
        (tmp / SPEC).write_bytes(model.spec_text.encode("utf-8"))
        # Only {"format": "pt"} in the header: safetensors writes its metadata map in no fixed order, and
        # the same network must export to the same bytes (the same sha256). metadata.json has the rest.
        wfile = tmp / WEIGHTS
        save_tensors(tensors, wfile, metadata={"format": "pt"})
        weights = {"file": WEIGHTS, "sha256": sha256_file(wfile), "bytes": wfile.stat().st_size, "contents": contents,
                   "dtype": "float32"}
        meta = model.metadata = model.metadata.replace(weights=weights)
        kw = {} if batch_size is None else {"batch_size": batch_size}
        if getattr(model, "label_size", 0):
            from .classes import class_grid_images, per_class

            k = per_class(samples, model.label_size)   # one row per class
            save_grid(class_grid_images(model, k, seed=seed, **kw), tmp / SAMPLES, cols=k)
        else:
            save_grid(model.sample(samples, seed=seed, **kw), tmp / SAMPLES)
        # Written here rather than by write_record: a fresh folder needs no atomic replace of each file.
        (tmp / METADATA).write_text(meta.to_json(), encoding="utf-8")
        (tmp / CARD).write_text(render_card(meta, hub_repo=meta.hub_repo), encoding="utf-8")


def write_record(folder: str | Path, meta: ModelMetadata, hub_repo: str | None = None) -> Path:
    """metadata.json and README.md of a folder, both from ``meta`` (e.g. after scores are recorded)."""
    write_metadata(folder, meta)
    return write_card(folder, meta, hub_repo)


def write_card(folder: str | Path, meta: ModelMetadata, hub_repo: str | None = None) -> Path:
    """(Re-)render README.md from the record."""
    from .card import render_card

    path = Path(folder) / CARD
    path.write_text(render_card(meta, hub_repo=hub_repo or meta.hub_repo), encoding="utf-8")
    return path


def write_metadata(folder: str | Path, meta: ModelMetadata) -> Path:
    """Write ``metadata.json`` atomically (a temporary file renamed into place)."""
    path = Path(folder) / METADATA
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(meta.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path
