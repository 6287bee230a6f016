"""The Hugging Face Hub: download a saved model folder by ``hf-hub:org/repo[@revision]``, publish one.

huggingface_hub reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` when it is first
imported, so it is imported here lazily, inside the functions. With ``HF_HUB_OFFLINE=1`` a model
already in the cache loads with no network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import ProganZooError, RunFailure, UserError

from . import records as R
from .records import CARD

if TYPE_CHECKING:
    from .model import ZooGenerator

# config.json: written by save_pretrained / push_to_hub for Hub tooling (huggingface_hub's mixin
# convention); loading never needs it.
CONFIG = "config.json"
# Only the files of a saved model are fetched: nothing else in a repo is ever downloaded or read.
MODEL_FILES = [R.WEIGHTS, R.SPEC, R.METADATA, R.CARD, R.SAMPLES, CONFIG]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _explain(exc: Exception, repo: str, revision: str | None) -> ProganZooError:
    """Turn huggingface_hub's exceptions into one line with the fix: a wrong name or revision is the
    user's input (exit 2), an unreachable or failing Hub is not (exit 1)."""
    from huggingface_hub import errors as E

    ref = f"hf-hub:{repo}" + (f"@{revision}" if revision else "")
    if isinstance(exc, E.RevisionNotFoundError):
        return UserError(f"{ref}: the Hub repo has no revision {revision!r} (check the branch, tag or commit)")
    if isinstance(exc, E.GatedRepoError):
        return UserError(f"{ref}: the repo is gated; accept its terms on the Hub and log in (`hf auth login`)")
    if isinstance(exc, E.RepositoryNotFoundError):
        return UserError(f"{ref}: no such model repo on {os.environ.get('HF_ENDPOINT') or 'the Hub'} "
                         "(or it is private: log in with `hf auth login` or set HF_TOKEN)")
    if isinstance(exc, E.LocalEntryNotFoundError) or isinstance(exc, E.OfflineModeIsEnabled):
        if _offline():
            return UserError(f"{ref}: not in the local Hugging Face cache and HF_HUB_OFFLINE=1; load it once "
                             "online (or unset HF_HUB_OFFLINE)")
        return RunFailure(f"{ref}: cannot reach {os.environ.get('HF_ENDPOINT') or 'the Hub'} and the model is not "
                         "cached; check the network, or set HF_HUB_OFFLINE=1 to use the cache")
    if isinstance(exc, E.EntryNotFoundError):
        return UserError(f"{ref}: the repo is not a progan-zoo model (no {R.METADATA}/{R.WEIGHTS}); "
                         "publish one with `progan-zoo publish`")
    return RunFailure(f"{ref}: download failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def download(repo: str, revision: str | None = None, cache_dir: str | None = None, **hub_kwargs: Any) -> Path:
    """Fetch (or find in the cache) a saved model folder from the Hub; returns the local snapshot folder.

    ``hub_kwargs`` go to ``snapshot_download`` (``force_download``, ``local_files_only``, ``token``)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub import errors as E

    try:
        path = snapshot_download(repo_id=repo, revision=revision, repo_type="model", allow_patterns=MODEL_FILES,
                                 cache_dir=cache_dir, **hub_kwargs)
    except (E.HfHubHTTPError, E.LocalEntryNotFoundError, E.OfflineModeIsEnabled, E.RepositoryNotFoundError,
            E.RevisionNotFoundError, E.EntryNotFoundError) as exc:
        raise _explain(exc, repo, revision) from None
    except (OSError, ValueError) as exc:
        # Connection errors surface as OSError subclasses (httpx/requests) in some versions.
        raise RunFailure(f"hf-hub:{repo}: download failed: {type(exc).__name__}: {exc}") from None
    path = Path(path)
    if not (path / R.METADATA).is_file():
        raise UserError(f"hf-hub:{repo}: the repo has no {R.METADATA}, so it is not a progan-zoo saved model "
                        "(publish one with `progan-zoo publish`)")
    return path


def download_file(repo: str, filename: str, revision: str | None = None) -> Path:
    """One file of a Hub repo (used by the leaderboard for cards and sample grids)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as E

    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision, repo_type="model"))
    except (E.HfHubHTTPError, E.LocalEntryNotFoundError, E.OfflineModeIsEnabled, E.RepositoryNotFoundError,
            E.RevisionNotFoundError, E.EntryNotFoundError) as exc:
        raise _explain(exc, repo, revision) from None
    except (OSError, ValueError) as exc:
        raise RunFailure(f"hf-hub:{repo}: download of {filename} failed: {type(exc).__name__}: {exc}") from None


def publish_to_hub(model_dir: str | Path, repo: str, *, revision: str | None = None, private: bool = False,
                   message: str | None = None, token: str | None = None,
                   model: "ZooGenerator | None" = None) -> dict[str, Any]:
    """Upload a verified saved model folder to a Hub repo (created if needed) as one new commit.

    ``model``: the folder as the caller opened (and so verified) it, carrying its record; else the
    folder is opened here. The card is rendered again from the record with the repo id, so a
    re-publish after new evaluations updates it; the Hub keeps every earlier commit.
    """
    from huggingface_hub import HfApi
    from huggingface_hub import errors as E

    from .folder import write_record
    from .sources.folder import open_folder

    model_dir = Path(model_dir)
    model = model or open_folder(model_dir)  # full verification before anything leaves the machine
    meta = model.metadata
    api = HfApi(token=token)
    stage = Path(tempfile.mkdtemp(prefix="progan-zoo-publish-"))
    try:
        for name in MODEL_FILES:
            src = model_dir / name
            if not src.is_file():
                continue
            try:
                os.link(src, stage / name)
            except OSError:
                shutil.copy2(src, stage / name)
        (stage / CARD).unlink(missing_ok=True)
        write_record(stage, meta.replace(extra={**meta.extra, "hub": {"repo": repo}}), hub_repo=repo)
        msg = message or (f"Publish {meta.name}: {meta.resolution}x{meta.resolution}, "
                          f"{meta.images_shown or '?'} images shown, spec {meta.spec['sha256'][:12]}")
        try:
            url = api.create_repo(repo_id=repo, repo_type="model", private=private, exist_ok=True)
            if revision and revision != "main":
                api.create_branch(repo_id=repo, branch=revision, repo_type="model", exist_ok=True)
            info = api.upload_folder(repo_id=repo, folder_path=str(stage), repo_type="model", revision=revision,
                                     commit_message=msg)
        except E.HfHubHTTPError as exc:
            raise RunFailure(f"hf-hub:{repo}: publishing failed: {str(exc).splitlines()[0]} (check that you are "
                            "logged in with write access: `hf auth login` or HF_TOKEN)") from None
        return {"repo": repo, "url": str(url), "revision": revision or "main",
                "commit": getattr(info, "oid", None), "commit_url": getattr(info, "commit_url", None)}
    finally:
        shutil.rmtree(stage, ignore_errors=True)
