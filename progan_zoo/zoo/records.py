"""What a saved model folder says about itself: the one definition of ``metadata.json`` and its parts.

```
MODEL/
  model.safetensors   G_ema state_dict (unprefixed keys); optional ``G.*`` and ``D.*`` copies
  spec.yaml           the exact spec the weights were trained from
  metadata.json       format version, spec sha256, resolution and stage, images shown, dataset,
                      licence, weights sha256, evaluation results with their settings
  README.md           model card (Hub YAML front matter with model-index results)
  samples.png         a sample grid
```

``read_metadata`` returns a ``ModelMetadata``; the loaded generator carries it, and the card, publish,
hub, evaluate and leaderboard code take it as an argument rather than reading the file again.
Imported networks add a ``Provenance`` (where the file came from); readers of foreign files return an
``Imported`` (spec text and state dicts) that the importer writes as a folder.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo import __version__
from progan_zoo.errors import UserError
from progan_zoo.jsonl import read_json

if TYPE_CHECKING:
    import torch

    from progan_zoo.compiler import CompiledSpec

FORMAT = "progan-zoo-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
SPEC = "spec.yaml"
METADATA = "metadata.json"
CARD = "README.md"
SAMPLES = "samples.png"
FILES = (WEIGHTS, SPEC, METADATA, CARD, SAMPLES)

DATASET_NAMES = {"mnist": "MNIST", "lfw-100": "LFW (first 100 faces)"}

OFFICIAL_LICENSE = "cc-by-nc-4.0"
OFFICIAL_REPO = "https://github.com/tkarras/progressive_growing_of_gans"
FBZ_REPO = "https://github.com/facebookresearch/pytorch_GAN_zoo"
FORMAT_TF = "official-tf-progan-pickle"
FORMAT_FBZ = "pytorch-gan-zoo-pgan"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class ModelMetadata:
    """``metadata.json``: the one definition of its keys and their order on disk, written by the
    exporter and the importer and returned by ``read_metadata``."""

    name: str
    spec: dict[str, Any]                    # name, revision, sha256 of the exact spec.yaml, file
    resolution: int                         # Of the saved generator.
    stage: int                              # Its stage index in the spec.
    alpha: float = 1.0                      # Newest block's fade weight.
    spec_resolution: int | None = None      # Final resolution of the spec.
    image_channels: int | None = None
    z_dim: int | None = None
    images_shown: int | None = None         # None: not known (imported networks).
    dataset: dict[str, Any] = field(default_factory=dict)   # name, display_name, source, resolution, channels
    license: str | None = None
    weights: dict[str, Any] = field(default_factory=dict)   # file, sha256, bytes, contents, dtype (folder.write_folder)
    training: dict[str, Any] = field(default_factory=dict)  # Run and checkpoint, or the imported file.
    samples: dict[str, Any] = field(default_factory=dict)   # file, n, seed of samples.png
    evaluation: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] | None = None        # Imported networks only (see ``Provenance``).
    official: dict[str, Any] | None = None          # Imported under an official name: is it that file? (official.py)
    reported: list[dict[str, Any]] | None = None    # Imported networks only: the paper's scores.
    created: str = field(default_factory=_now)
    progan_zoo_version: str = __version__
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # Keys written later (e.g. hub), kept last, in order.

    # Key order of metadata.json; the import-only keys are left out when None.
    ORDER = ("format", "format_version", "name", "spec", "resolution", "stage", "alpha", "spec_resolution",
             "image_channels", "z_dim", "images_shown", "dataset", "license", "weights", "training",
             "provenance", "official", "reported", "samples", "evaluation", "created", "progan_zoo_version")
    _OPTIONAL = ("provenance", "official", "reported")

    def __post_init__(self) -> None:
        # Keys a folder did not write are left out again when it is written back (byte-identical).
        self._absent: set[str] = set()

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.ORDER
               if k not in self._absent and not (k in self._OPTIONAL and getattr(self, k) is None)}
        return {**out, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMetadata":
        """The record of a metadata dict; unknown keys go to ``extra``, in order."""
        known = {k: data[k] for k in cls.ORDER if k in data}
        meta = cls(**known, extra={k: v for k, v in data.items() if k not in cls.ORDER})
        meta._absent = {k for k in cls.ORDER if k not in data}
        return meta

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> "ModelMetadata":
        """A copy with ``changes``; a changed key is written even if the source lacked it."""
        new = dataclasses.replace(self, **changes)
        new._absent = self._absent - set(changes)
        return new

    # Facts that readers take, with the defaults a hand-written or older folder needs.
    @property
    def hub_repo(self) -> str | None:
        return (self.extra.get("hub") or {}).get("repo")

    @property
    def weights_file(self) -> str:
        return self.weights.get("file") or WEIGHTS

    @property
    def weights_contents(self) -> list[str]:
        return self.weights.get("contents", ["G_ema"])

    @property
    def dataset_name(self) -> str | None:
        return (self.dataset or {}).get("name")


@dataclass(frozen=True)
class Provenance:
    """Where an imported model's weights come from (``metadata.json``'s ``provenance``)."""

    source_file: str                      # The file's name as given (no directories).
    sha256: str                           # Of the file's bytes.
    bytes: int
    format: str                           # FORMAT_TF or FORMAT_FBZ.
    origin: str                           # The project that wrote the format.
    static_kwargs: dict[str, Any] = field(default_factory=dict)   # Per network (official files).
    lod: dict[str, float] = field(default_factory=dict)           # Each network's lod variable.
    license: str = OFFICIAL_LICENSE
    executed_code: bool = False           # Always False: nothing stored in the file is run.

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Provenance":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Imported:
    """A foreign file turned into a spec and state dicts, before anything is written."""

    spec_text: str
    G_ema: dict[str, "torch.Tensor"]
    G: dict[str, "torch.Tensor"] | None
    D: dict[str, "torch.Tensor"] | None
    stage: int                            # Highest trained stage (from the lod variable).
    alpha: float                          # Fade weight of that stage (1 - frac(lod)).
    provenance: Provenance
    dataset: str


@dataclass
class Source:
    """Weights and records read from a run, a checkpoint or a saved model folder (an export source)."""

    kind: str                               # "checkpoint" or "folder"
    path: Path
    compiled: "CompiledSpec"                # the source's spec: raw text, validated spec, graph
    spec_file: Path
    G_ema: Any                              # full-depth Generator with the EMA weights (a folder's: cut to its stage)
    stage: int                              # highest trained stage
    alpha: float
    images_shown: int | None
    run_dir: Path | None = None
    checkpoint: Path | None = None
    G: Any = None                           # raw G, if available
    D: Any = None                           # D, if available
    meta: ModelMetadata | None = None       # a folder's record
    run: dict[str, Any] = field(default_factory=dict)    # run.json

    @property
    def spec_text(self) -> str:
        return self.compiled.raw.text


def spec_record(spec: Any, sha256: str) -> dict[str, Any]:
    """metadata.json's ``spec`` entry for a validated spec and the sha256 of its exact text; beside it the
    sha256 of the resolved spec (every default of its version written out): the model's identity."""
    from progan_zoo.compiler.defaults import resolved_sha256

    return {"name": spec.name, "revision": spec.revision, "sha256": sha256,
            "resolved_sha256": resolved_sha256(spec), "file": SPEC}


def dataset_info(spec: Any, override: str | None = None) -> dict[str, Any]:
    """metadata.json's ``dataset`` entry: from the spec's data source, or the name ``override``."""
    src = spec.data.source
    name = override or (src if "/" not in src and "\\" not in src else Path(src.rstrip("/\\")).stem)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower() or "unknown"
    return {"name": name, "display_name": DATASET_NAMES.get(name, name), "source": src,
            "resolution": spec.data.resolution, "channels": spec.data.channels, **dataset_classes(spec)}


def dataset_classes(spec: Any) -> dict[str, Any]:
    """The ``classes`` entry of metadata.json's ``dataset`` for a conditional spec ({} otherwise)."""
    names = spec.class_names()
    return {"classes": names} if names else {}


def is_model_folder(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / METADATA).is_file()


def read_metadata(folder: str | Path) -> ModelMetadata:
    """Parse and check ``metadata.json`` (format and version); errors name the file and the fix."""
    path = Path(folder) / METADATA
    if not path.is_file():
        raise UserError(f"{path}: missing; {folder} is not a saved model folder "
                        "(make one with `progan-zoo export RUN_DIR OUT`)")
    meta = read_json(path, "export the model again with `progan-zoo export`")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a progan-zoo metadata file (\"format\" must be {FORMAT!r}); "
                        "export the model again with `progan-zoo export`")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(f"{path}: format_version {version!r} is not supported by this progan-zoo "
                        f"(it reads version {FORMAT_VERSION}); upgrade progan-zoo or export the model again")
    for key in ("spec", "weights", "resolution", "stage"):
        if key not in meta:
            raise UserError(f"{path}: has no {key!r} entry; export the model again with `progan-zoo export`")
    return ModelMetadata.from_dict(meta)
