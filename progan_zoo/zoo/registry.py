"""Model names -> where the weights live: a registry shipped with the package plus user registries.

A registry is a JSON file::

    {"format_version": 1,
     "models": {
       "mnist-32":      {"folder": "models/mnist-32", "description": "..."},
       "my-faces":      {"hub": "me/progan-faces", "revision": "main"},
       "celebahq-1024": {"hub": "progan-zoo/celebahq-1024", "published": false}}}

``folder`` is relative to the registry file. ``published: false`` names a model whose weights are
not out yet. ``official`` names a network of the official ProGAN release: the file to download and
from where (optionally its published ``sha256``); ``load(name)`` and ``progan-zoo fetch`` download,
verify and import it (``download.py``), as ``progan-zoo import`` does by hand, into the user's zoo
folder (``zoo_models_dir()``), where ``load(name)`` then finds it. User registries are read from ``$PROGAN_ZOO_REGISTRY`` (files or folders holding a
``registry.json``, separated by ``os.pathsep``; earlier ones win) or, when that is unset, from
``$XDG_CONFIG_HOME/progan_zoo/registry.json`` (``~/.config/...``). User entries override shipped ones.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from progan_zoo.errors import UsageError, UserError
from progan_zoo.jsonl import read_json

SHIPPED = Path(__file__).with_name("registry.json")
REGISTRY_VERSION = 1
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
HUB_PREFIX = "hf-hub:"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model and where it lives."""

    name: str
    kind: str                  # "folder", "hub" or "unpublished"
    location: str              # absolute folder path or Hub repo id
    revision: str | None       # Hub revision (branch, tag or commit)
    registry: str              # the registry file it came from
    description: str = ""
    dataset: str | None = None
    resolution: int | None = None
    official_file: str | None = None   # "official" entries: the release's file name
    download: str | None = None        # "official" entries: where to download it
    official: dict[str, Any] | None = None  # "official" entries: the whole record (sha256, format, ...)

    @property
    def imported(self) -> bool:
        """For "official" entries: whether an imported copy is in the zoo folder."""
        return self.kind == "official" and (Path(self.location) / "metadata.json").is_file()

    @property
    def import_command(self) -> str:
        return f"progan-zoo import {self.official_file} --name {self.name}"

    @property
    def where(self) -> str:
        if self.kind == "folder":
            return self.location
        if self.kind == "official":
            return self.location if self.imported else f"not imported: {self.official_file} from {self.download}"
        ref = f"{HUB_PREFIX}{self.location}" + (f"@{self.revision}" if self.revision and self.revision != "main" else "")
        return ref if self.kind == "hub" else f"{ref} (not published yet)"


def zoo_home() -> Path:
    """The user's zoo folder: ``$PROGAN_ZOO_HOME``, else ``$XDG_DATA_HOME/progan_zoo`` (``~/.local/share/...``)."""
    env = os.environ.get("PROGAN_ZOO_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "progan_zoo"


def zoo_models_dir() -> Path:
    """Where imported models go by default: ``zoo_home()/models`` (one folder per model name)."""
    return zoo_home() / "models"


def user_registry_paths() -> list[Path]:
    """The user registry files, highest priority first."""
    env = os.environ.get("PROGAN_ZOO_REGISTRY")
    if env is not None:
        paths = []
        for part in env.split(os.pathsep):
            if part.strip():
                p = Path(part).expanduser()
                paths.append(p / "registry.json" if p.is_dir() or not p.suffix else p)
        return paths
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [base / "progan_zoo" / "registry.json"]


def default_user_registry() -> Path:
    """Where ``progan-zoo models --add`` writes: the first user registry."""
    return user_registry_paths()[0]


def parse_hub_ref(ref: str) -> tuple[str, str | None]:
    """``hf-hub:org/repo[@revision]`` (prefix optional) -> (repo id, revision or None)."""
    body = ref[len(HUB_PREFIX):] if ref.startswith(HUB_PREFIX) else ref
    repo, _, rev = body.partition("@")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", repo):
        raise UsageError(f"{ref!r}: a Hub model is hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION")
    return repo, (rev or None)


def _entry(name: str, data: Any, file: Path) -> ModelEntry:
    where = f"{file}: models.{name}"
    if not NAME_RE.match(name):
        raise UserError(f"{where}: invalid model name (use lower case, digits, '.', '_', '-')")
    if not isinstance(data, dict):
        raise UserError(f"{where}: must be an object with \"folder\" or \"hub\"")
    common = dict(description=str(data.get("description", "")), dataset=data.get("dataset"),
                  resolution=data.get("resolution"), registry=str(file))
    if "official" in data:
        off = data["official"]
        if not (isinstance(off, dict) and isinstance(off.get("file"), str) and isinstance(off.get("url"), str)):
            raise UserError(f"{where}: \"official\" must be {{\"file\": NAME.pkl, \"url\": WHERE}}")
        if off.get("sha256") is not None and not re.fullmatch(r"[0-9a-f]{64}", str(off["sha256"])):
            raise UserError(f"{where}: official.sha256 must be 64 lower-case hex digits (or left out)")
        return ModelEntry(name, "official", str(zoo_models_dir() / name), None, official_file=off["file"],
                          download=off["url"], official=dict(off), **common)
    if "folder" in data and "hub" in data:
        raise UserError(f"{where}: give \"folder\" or \"hub\", not both")
    if "folder" in data:
        p = Path(str(data["folder"])).expanduser()
        p = p if p.is_absolute() else (file.parent / p)
        return ModelEntry(name, "folder", str(p.resolve()), None, **common)
    if "hub" in data:
        repo, rev = parse_hub_ref(str(data["hub"]))
        rev = str(data.get("revision") or rev or "main")
        kind = "hub" if data.get("published", True) else "unpublished"
        return ModelEntry(name, kind, repo, rev, **common)
    raise UserError(f"{where}: needs \"folder\" (a saved model folder) or \"hub\" (org/name on the Hub)")


def read_registry(file: str | Path) -> dict[str, ModelEntry]:
    """Entries of one registry file (a missing file is an empty registry)."""
    file = Path(file)
    if not file.is_file():
        return {}
    data = read_json(file, "fix it or delete it")
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise UserError(f"{file}: a registry is {{\"format_version\": 1, \"models\": {{NAME: {{...}}}}}}")
    if data.get("format_version", REGISTRY_VERSION) != REGISTRY_VERSION:
        raise UserError(f"{file}: format_version {data.get('format_version')!r} is not supported (expected 1)")
    return {name: _entry(name, e, file) for name, e in data.get("models", {}).items()}


def all_entries() -> dict[str, ModelEntry]:
    """Every known name: shipped entries, overridden by user registries (earlier paths win)."""
    entries = dict(read_registry(SHIPPED))
    for path in reversed(user_registry_paths()):
        entries.update(read_registry(path))
    return dict(sorted(entries.items()))


def list_models(pattern: str | None = None, *, published_only: bool = False) -> list[str]:
    """Names of the known models (``pattern`` is a shell wildcard, as in timm's ``list_models``)."""
    names = []
    for name, e in all_entries().items():
        if pattern and not fnmatch.fnmatch(name, pattern):
            continue
        if published_only and e.kind == "unpublished":
            continue
        names.append(name)
    return names


def resolve(name: str) -> ModelEntry:
    """The entry of a registered name; an unknown name lists the known ones."""
    entries = all_entries()
    if name not in entries:
        known = ", ".join(entries) or "none"
        raise UserError(f"unknown model {name!r}; known models: {known} (a folder path or hf-hub:ORG/NAME "
                        "works too; add names with `progan-zoo models --add NAME TARGET`)")
    return entries[name]


def add_entry(file: str | Path, name: str, entry: dict[str, Any]) -> Path:
    """Add or replace ``name`` in a registry file (created if missing); paths under it are kept relative."""
    file = Path(file)
    if not NAME_RE.match(name):
        raise UsageError(f"{name!r}: invalid model name (use lower case, digits, '.', '_', '-')")
    data: dict[str, Any] = {"format_version": REGISTRY_VERSION, "models": {}}
    if file.is_file():
        read_registry(file)  # validates
        data = json.loads(file.read_text(encoding="utf-8"))
        data.setdefault("models", {})
    entry = dict(entry)
    if "folder" in entry and Path(entry["folder"]).is_absolute():
        p = Path(entry["folder"]).resolve()
        try:
            entry["folder"] = str(p.relative_to(file.parent.resolve()))
        except ValueError:
            entry["folder"] = str(p)
    _entry(name, entry, file)  # validates the new entry
    data["models"][name] = entry
    data["models"] = dict(sorted(data["models"].items()))
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(file)
    return file


def remove_entry(file: str | Path, name: str) -> bool:
    """Remove ``name`` from a registry file; False when it was not there."""
    file = Path(file)
    if not file.is_file():
        return False
    read_registry(file)
    data = json.loads(file.read_text(encoding="utf-8"))
    if name not in data.get("models", {}):
        return False
    del data["models"][name]
    file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return True
