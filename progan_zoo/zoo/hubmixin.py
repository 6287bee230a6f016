"""``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` on a loaded generator.

The semantics of huggingface_hub's ``PyTorchModelHubMixin``: ``save_pretrained(dir)`` writes
safetensors weights, a ``config.json`` and a model card (``README.md``) into a folder;
``from_pretrained(dir_or_repo_id)`` reads a local folder or downloads a Hub repo (``revision``,
``cache_dir``, ``force_download``, ``local_files_only``, ``token`` as there);
``push_to_hub(repo_id)`` saves to a temporary folder and uploads it as one commit.

The folder is the saved model folder ``load`` reads (``folder.py``: weights, ``spec.yaml``,
``metadata.json``, card, samples) plus ``config.json``. That file is what Hub tooling looks for (the
Hub counts downloads of a library's model by it); ``load`` never needs it, since ``metadata.json``
and ``spec.yaml`` stay the record. We do not subclass ``PyTorchModelHubMixin`` itself: it would
serialise ``__init__`` arguments into the config and rebuild the module from them, while a
generator here is rebuilt from its spec and verified against recorded hashes.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", bound="HubMixin")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


class HubMixin:
    """Hugging Face-style saving, loading and pushing for ``ZooGenerator``."""

    # What the generator class provides (declared for readers and type checkers).
    G: Any
    spec_text: str
    metadata: Any                  # ModelMetadata
    alpha: float
    resolution: int
    stage: int
    z_dim: int
    image_channels: int

    def save_pretrained(self, save_directory: str | Path, *, config: dict[str, Any] | None = None,
                        repo_id: str | None = None, push_to_hub: bool = False,
                        **push_to_hub_kwargs: Any) -> str | None:
        """Write this generator as a saved model folder (replacing one already there) plus ``config.json``.

        ``config`` adds keys to ``config.json``. With ``push_to_hub=True`` the folder is then pushed to
        ``repo_id`` (default: the folder's name) and the commit URL is returned.
        """
        from progan_zoo.fsutil import replaced_atomically

        from .folder import check_out, write_folder
        from .hub import CONFIG

        out = Path(save_directory)
        check_out(out, True, "save_directory")
        samples = self.metadata.samples or {}
        write_folder(out, self, ".save-tmp", samples=int(samples.get("n", 16)), seed=int(samples.get("seed", 0)))
        with replaced_atomically(out / CONFIG) as tmp:
            tmp.write_text(json.dumps({**self.hub_config(), **(config or {})}, indent=2) + "\n", encoding="utf-8")
        if push_to_hub:
            return self.push_to_hub(repo_id or out.name, config=config, **push_to_hub_kwargs)
        return None

    def hub_config(self) -> dict[str, Any]:
        """``config.json``: what the generator is, for Hub tooling (``metadata.json`` remains the record)."""
        from . import records as R

        meta = self.metadata
        return {"library_name": "progan-zoo", "format": R.FORMAT, "name": meta.name,
                "architecture": "progressive-gan-generator", "resolution": self.resolution,
                "stage": self.stage, "alpha": self.alpha, "z_dim": self.z_dim,
                "image_channels": self.image_channels,
                "spec_sha256": (meta.spec or {}).get("sha256")}

    @classmethod
    def from_pretrained(cls: type[T], pretrained_model_name_or_path: str | Path, *, force_download: bool = False,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool = False, revision: str | None = None,
                        resolution: int | None = None, device: str | None = None) -> T:
        """A saved model folder, a Hub repo id (``org/name``; ``revision`` picks a branch, tag or commit),
        or anything ``load`` takes (a registered name, ``hf-hub:org/name``)."""
        from .hub import download
        from .loader import load
        from .sources.folder import open_folder

        ref = str(pretrained_model_name_or_path)
        if Path(ref).expanduser().is_dir():
            return open_folder(Path(ref).expanduser(), resolution=resolution, device=device)
        if _REPO_ID.fullmatch(ref):
            local = download(ref, revision, cache_dir=str(cache_dir) if cache_dir else None,
                             force_download=force_download, local_files_only=local_files_only, token=token)
            return open_folder(local, resolution=resolution, device=device,
                                 source=f"hf-hub:{ref}" + (f"@{revision}" if revision else ""))
        return load(ref, resolution=resolution, device=device)

    def push_to_hub(self, repo_id: str, *, config: dict[str, Any] | None = None,
                    commit_message: str | None = None, private: bool | None = None, token: str | None = None,
                    branch: str | None = None) -> str:
        """Save to a temporary folder and upload it to ``repo_id`` (created if needed) as one commit;
        returns the commit URL."""
        from .hub import publish_to_hub

        with tempfile.TemporaryDirectory(prefix="progan-zoo-push-") as tmp:
            folder = Path(tmp) / "model"
            self.save_pretrained(folder, config=config)
            info = publish_to_hub(folder, repo_id, revision=branch, private=bool(private), message=commit_message,
                                  token=token)
        return str(info.get("commit_url") or info["url"])
