"""Writing a saved model folder (layout: ``records``): weights, the exact spec, metadata, card, samples.

Every writer (export, import, publish) fills a fresh folder beside the target and renames it into
place when whole (``fresh_tmp`` then ``finish_folder``), so a folder is written whole or not at all.
The card is always rendered from the record being written, never from a file read back.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from progan_zoo.errors import UsageError

from .records import CARD, SAMPLES, ModelMetadata, is_model_folder, write_metadata


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


def fresh_tmp(out: Path, suffix: str) -> Path:
    """An empty folder beside ``out`` to write the model into; ``finish_folder`` renames it to ``out``."""
    tmp = out.with_name(out.name + suffix)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def finish_folder(tmp: Path, out: Path, model: Any, samples: int, seed: int, batch_size: int | None = None) -> None:
    """The last steps of every saved-model folder: sample grid, metadata and card into ``tmp``, then
    ``tmp`` takes the place of ``out``. ``model`` is the ZooGenerator and carries the record."""
    from .images import save_grid

    kw = {} if batch_size is None else {"batch_size": batch_size}
    save_grid(model.sample(samples, seed=seed, **kw), tmp / SAMPLES)
    write_metadata(tmp, model.metadata)
    write_card(tmp, model.metadata)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)


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
