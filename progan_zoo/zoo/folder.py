"""A saved model is a folder: weights, the exact spec, metadata, a model card and a sample grid.

```
MODEL/
  model.safetensors   G_ema state_dict (unprefixed keys); optional ``G.*`` and ``D.*`` copies
  spec.yaml           the exact spec the weights were trained from
  metadata.json       format version, spec sha256, resolution and stage, images shown, dataset,
                      licence, weights sha256, evaluation results with their settings
  README.md           model card (Hub YAML front matter with model-index results)
  samples.png         a sample grid
```

Reading one checks, in order: metadata.json parses and has our format; spec.yaml's sha256 is the
one recorded; the weights file is well-formed safetensors; its sha256 is the one recorded; its
tensor names and shapes are exactly those the spec builds at the recorded stage. Only then are
tensors read.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo import __version__
from progan_zoo.errors import UserError

from .weights import WeightsError, check_sha256, read_header, sha256_file, tensor_shapes

if TYPE_CHECKING:
    import torch

    from .model import ZooGenerator

FORMAT = "progan-zoo-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
SPEC = "spec.yaml"
METADATA = "metadata.json"
CARD = "README.md"
SAMPLES = "samples.png"
FILES = (WEIGHTS, SPEC, METADATA, CARD, SAMPLES)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class ModelMetadata:
    """``metadata.json`` as the exporter and the importer write it: the one definition of its keys and
    their order on disk. Readers take the plain dict (``to_dict``, or ``read_metadata``)."""

    name: str
    spec: dict[str, Any]                    # name, revision, sha256 of the exact spec.yaml, file
    resolution: int                         # Of the saved generator.
    stage: int                              # Its stage index in the spec.
    alpha: float                            # Newest block's fade weight.
    spec_resolution: int                    # Final resolution of the spec.
    image_channels: int
    z_dim: int
    images_shown: int | None                # None: not known (imported networks).
    dataset: dict[str, Any]                 # name, display_name, source, resolution, channels
    license: str
    weights: dict[str, Any]                 # See ``weights_record``.
    training: dict[str, Any]                # Run and checkpoint, or the imported file.
    samples: dict[str, Any]                 # file, n, seed of samples.png
    evaluation: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] | None = None        # Imported networks only (safe_pickle's record).
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

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.ORDER if not (k in self._OPTIONAL and getattr(self, k) is None)}
        return {**out, **self.extra}

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMetadata":
        """The record of a metadata dict (as ``read_metadata`` returns it); unknown keys go to ``extra``."""
        known = {k: data[k] for k in cls.ORDER if k in data}
        return cls(**known, extra={k: v for k, v in data.items() if k not in cls.ORDER})

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        return cls.from_dict(json.loads(text))


def spec_record(spec: Any, sha256: str) -> dict[str, Any]:
    """metadata.json's ``spec`` entry for a validated spec and the sha256 of its exact text; beside it the
    sha256 of the resolved spec (every default of its version written out): the model's identity."""
    from progan_zoo.compiler.defaults import resolved_sha256

    return {"name": spec.name, "revision": spec.revision, "sha256": sha256,
            "resolved_sha256": resolved_sha256(spec), "file": SPEC}


def weights_record(file: Path, contents: list[str]) -> dict[str, Any]:
    """metadata.json's ``weights`` entry for a written weights file holding ``contents`` (G_ema, G, D)."""
    return {"file": WEIGHTS, "sha256": sha256_file(file), "bytes": file.stat().st_size, "contents": contents,
            "dtype": "float32"}


def _dumps(meta: dict[str, Any]) -> str:
    return json.dumps(meta, indent=2, sort_keys=False) + "\n"


def is_model_folder(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / METADATA).is_file()


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """Parse and check ``metadata.json`` (format and version); errors name the file and the fix."""
    path = Path(folder) / METADATA
    if not path.is_file():
        raise UserError(f"{path}: missing; {folder} is not a saved model folder "
                        "(make one with `progan-zoo export RUN_DIR OUT`)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); export the model again with `progan-zoo export`") from None
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
    return meta


def write_metadata(folder: str | Path, meta: dict[str, Any]) -> Path:
    path = Path(folder) / METADATA
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(_dumps(meta), encoding="utf-8")
    tmp.replace(path)
    return path


def read_spec(folder: str | Path, meta: dict[str, Any]):
    """Load spec.yaml, check its sha256 against metadata, validate it. Returns (RawSpec, Spec)."""
    from progan_zoo.compiler.load import load
    from progan_zoo.compiler.validate import validate

    path = Path(folder) / SPEC
    if not path.is_file():
        raise UserError(f"{path}: missing; a saved model needs the exact spec it was trained from "
                        "(export the model again with `progan-zoo export`)")
    raw = load(path)
    want = (meta.get("spec") or {}).get("sha256")
    if raw.sha256 != want:
        raise UserError(f"{path}: sha256 {raw.sha256[:16]}... differs from {METADATA}'s spec.sha256 "
                        f"{str(want)[:16]}...; the spec was edited or replaced after export (restore the exact "
                        "spec the weights were trained with, or export the model again)")
    spec = validate(raw)
    resolved = (meta.get("spec") or {}).get("resolved_sha256")
    if resolved is not None:  # folders written before issue 18 record the text hash only
        from progan_zoo.compiler.defaults import resolved_sha256

        have = resolved_sha256(spec)
        if have != resolved:
            raise UserError(f"{path}: resolved sha256 {have[:16]}... differs from {METADATA}'s "
                            f"spec.resolved_sha256 {str(resolved)[:16]}...: this progan-zoo reads the spec as "
                            "another model than the one exported (upgrade progan-zoo, or export the model again)")
    return raw, spec


def check_weights_match(G: "torch.nn.Module", header: dict[str, Any], weights_path: Path, spec_path: Path,
                        prefix: str = "") -> None:
    """The file's tensors must be exactly G's state_dict: same names, same shapes."""
    want = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    have = tensor_shapes(header, prefix)
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if not (missing or extra or wrong):
        return
    parts = []
    if wrong:
        k = next((w for w in wrong if w.endswith(".weight")), wrong[0])  # a weight's shape says more than a bias
        parts.append(f"{len(wrong)} tensor(s) differ in shape, e.g. {prefix}{k} is {list(have[k])} in the file but "
                     f"{list(want[k])} in the spec")
    if missing:
        parts.append(f"{len(missing)} tensor(s) the spec needs are missing, e.g. {prefix}{missing[0]}")
    if extra:
        parts.append(f"{len(extra)} tensor(s) the spec does not have, e.g. {prefix}{extra[0]}")
    raise WeightsError(f"{weights_path}: does not match {spec_path.name}: {'; '.join(parts)} (the spec and weights "
                       "come from different models; export the model again from its run)")


def open_folder(folder: str | Path, *, resolution: int | None = None, device: str | None = None,
                source: str | None = None) -> "ZooGenerator":
    """Verify a saved model folder and build its generator (see the module docstring for the checks)."""
    import torch

    from progan_zoo.compiler.build import build_generator
    from progan_zoo.compiler.graph import to_graph

    from .model import ZooGenerator, truncate_generator
    from .weights import load_tensors

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    meta = read_metadata(folder)
    raw, spec = read_spec(folder, meta)
    wfile = folder / (meta["weights"].get("file") or WEIGHTS)
    header = read_header(wfile)
    check_sha256(wfile, meta["weights"].get("sha256"), folder / METADATA)

    full = build_generator(to_graph(spec))
    stage = int(meta["stage"])
    if not 0 <= stage < full.num_stages or full.resolutions[stage] != int(meta["resolution"]):
        raise UserError(f"{folder / METADATA}: stage {stage} / resolution {meta['resolution']} do not exist in "
                        f"{SPEC} (its resolutions are {full.resolutions}); export the model again")
    G = truncate_generator(full, stage)
    check_weights_match(G, header, wfile, folder / SPEC)
    G.load_state_dict(load_tensors(wfile), strict=True)
    alpha = float(meta.get("alpha", 1.0))
    model = ZooGenerator(G, spec, raw.text, meta, alpha=alpha, source=source or str(folder))
    if resolution is not None and resolution != model.resolution:
        model = model.at_resolution(int(resolution))
    if device is not None:
        model = model.to(torch.device(device))
    return model
