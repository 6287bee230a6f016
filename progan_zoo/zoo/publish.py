"""``progan-zoo publish``: a run or a saved model folder -> the Hub, or -> a local registry folder."""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UsageError

from . import records as R
from .registry import NAME_RE, add_entry

if TYPE_CHECKING:
    from .model import ZooGenerator


def publish(source: str | Path, *, repo: str | None = None, to: str | Path | None = None,
            revision: str | None = None, private: bool = False, name: str | None = None,
            message: str | None = None, checkpoint: str | None = None, token: str | None = None) -> dict[str, Any]:
    """Publish a saved model folder, exporting it first when ``source`` is a run or a checkpoint.

    ``repo`` (``org/name``) uploads to the Hub as a new commit; ``to`` copies into a local registry
    folder ``TO/<name>/`` and records it in ``TO/registry.json`` (the previous version, if any, is
    kept under ``TO/.history/<name>/``).
    """
    from .sources.folder import open_folder

    if (repo is None) == (to is None):
        raise UsageError("give exactly one of --repo ORG/NAME (the Hub) or --to DIR (a local registry)")
    source = Path(source)
    tmp = None
    try:
        if R.is_model_folder(source):
            folder = source
            model = open_folder(folder)  # verified before it is published; the record travels with it
        else:
            from .export import write_export

            # A folder written here from a verified source is not read back: write_export returns the
            # model it wrote, with the record as written.
            tmp = Path(tempfile.mkdtemp(prefix="progan-zoo-export-"))
            default = name or (repo.split("/")[-1] if repo else None)
            folder = tmp / (default or "model")
            model = write_export(source, folder, checkpoint=checkpoint, name=default)
            if default is None:
                # Named after the spec, as the run's own name may be anything (the record that travels
                # is renamed; the published folder's metadata.json and card are written from it).
                model.metadata = model.metadata.replace(name=model.metadata.spec["name"])
        if repo is not None:
            from .hub import publish_to_hub

            return publish_to_hub(folder, repo, revision=revision, private=private, message=message, token=token,
                                  model=model)
        return publish_local(folder, Path(to), name=name, model=model)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def publish_local(folder: str | Path, to: Path, name: str | None = None,
                  model: "ZooGenerator | None" = None) -> dict[str, Any]:
    """Copy a verified saved model into ``to/<name>/`` and register it in ``to/registry.json``.
    ``model``: the folder as the caller opened (and so verified) it; else it is opened here."""
    from .folder import write_record
    from .sources.folder import open_folder

    folder = Path(folder)
    meta = (model or open_folder(folder)).metadata
    name = name or str(meta.name or folder.name)
    if not NAME_RE.match(name):
        raise UsageError(f"{name!r}: invalid model name for a registry (lower case, digits, '.', '_', '-'); "
                         "pass --name")
    to = to.resolve()
    to.mkdir(parents=True, exist_ok=True)
    dest = to / name
    staging = to / f".{name}.publishing"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    for f in R.FILES:
        if (folder / f).is_file():
            shutil.copy2(folder / f, staging / f)
    meta = meta.replace(name=name)
    write_record(staging, meta)
    kept = None
    if dest.exists():
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        kept = to / ".history" / name / stamp
        kept.parent.mkdir(parents=True, exist_ok=True)
        dest.rename(kept)
    staging.rename(dest)
    entry = {"folder": name, "dataset": meta.dataset_name, "resolution": meta.resolution,
             "description": f"published {_dt.date.today().isoformat()}"}
    reg = add_entry(to / "registry.json", name, entry)
    return {"name": name, "folder": str(dest), "registry": str(reg), "previous": str(kept) if kept else None}
