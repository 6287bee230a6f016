"""The parent of a fine-tuning run: a saved model's weights, checked against the new spec's networks.

``progan-zoo train SPEC --init-from MODEL`` opens MODEL (anything ``load`` takes: a registered
name, a folder, ``hf-hub:org/name``) with every hash checked, and hands the trainer a ``Parent``:
G_ema, and G and D where the folder stores them (``progan-zoo export --with-training``); a folder
without them starts G from G_ema and D from the spec's fresh initialisation, which the run says.
The spec may differ from the model's in anything but the networks up to the model's resolution
(data, schedule, learning rates, later resolutions): every tensor the model has must exist in the
spec's networks with the same shape, and the architecture options must agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class Parent:
    """A saved model as the starting point of a run."""

    ref: str                                   # as given to --init-from
    name: str
    spec_sha256: str
    weights_sha256: str
    stage: int
    alpha: float
    resolution: int
    options: dict[str, Any]                    # the model's architecture.options
    G_ema: dict[str, "torch.Tensor"]
    G: dict[str, "torch.Tensor"] | None = None
    D: dict[str, "torch.Tensor"] | None = None
    notes: list[str] = field(default_factory=list)   # what the run should say (e.g. no D in the folder)

    def record(self) -> dict[str, Any]:
        """``run.json``'s ``init_from``, copied into an exported model's metadata and card."""
        return {"model": self.ref, "name": self.name, "spec_sha256": self.spec_sha256,
                "weights_sha256": self.weights_sha256, "stage": self.stage, "resolution": self.resolution,
                "alpha": self.alpha, "loaded": [n for n, s in (("G_ema", self.G_ema), ("G", self.G), ("D", self.D))
                                                 if s is not None]}

    def apply(self, G: "nn.Module", D: "nn.Module", G_ema: "nn.Module", spec: Any, spec_path: str) -> None:
        """Check the spec's networks against the weights, then copy them in (G from G_ema when the folder
        has no G; D stays fresh when it has no D). Raises one line naming the first tensor that differs."""
        import torch

        mine = spec.architecture.options.model_dump()
        for key, value in self.options.items():
            if mine.get(key) != value:
                raise UserError(f"{spec_path}: architecture.options.{key} is {mine.get(key)!r} but {self.ref} was "
                                f"trained with {value!r}; fine-tune with the model's own options (its spec.yaml)")
        for net, module, state in (("G", G_ema, self.G_ema), ("G", G, self.G), ("D", D, self.D)):
            if state is None:
                continue
            want = module.state_dict()
            for key, tensor in state.items():
                have = list(want[key].shape) if key in want else None
                if have != list(tensor.shape):
                    what = f"has no tensor {key}" if have is None else f"tensor {key} is {have}"
                    raise UserError(f"{spec_path}: {net} {what} but {self.ref} has {key} {list(tensor.shape)}; the "
                                    "spec's networks differ from the model's (fine-tune with a spec whose rows up to "
                                    "the model's resolution are the model's, e.g. its own spec.yaml)")
        with torch.no_grad():
            for module, state in ((G_ema, self.G_ema), (G, self.G or self.G_ema), (D, self.D)):
                if state is None:
                    continue
                current = module.state_dict()
                for key, tensor in state.items():
                    current[key].copy_(tensor.to(current[key].device))


def open_parent(ref: str) -> Parent:
    """Open a saved model to fine-tune from (hashes checked as ``load`` checks them)."""
    from . import records as R
    from .loader import load
    from .weights import load_tensors

    model = load(ref)
    meta = model.metadata
    if not meta.weights.get("sha256"):  # a run or checkpoint: no weights hash to record as the parent
        raise UserError(f"--init-from {ref}: a training run or checkpoint, not a saved model; export it first "
                        f"(`progan-zoo export {ref} DIR`) and fine-tune from DIR, or continue the run with "
                        f"`progan-zoo train --resume {ref}`")
    folder = _folder_of(ref, model)
    contents = meta.weights.get("contents", ["G_ema"])
    G = D = None
    notes = []
    if folder is not None and ("G" in contents or "D" in contents):
        wfile = folder / meta.weights.get("file", R.WEIGHTS)
        G = load_tensors(wfile, "G.") if "G" in contents else None
        D = load_tensors(wfile, "D.") if "D" in contents else None
    if D is None:
        notes.append(f"{ref} has no discriminator (its weights hold {', '.join(contents)}; export it with "
                     "`progan-zoo export --with-training` to keep D): D starts from random weights")
    if G is None:
        notes.append(f"{ref} has no raw G: G starts as a copy of its G_ema")
    return Parent(ref=ref, name=model.name, spec_sha256=meta.spec["sha256"], weights_sha256=meta.weights["sha256"],
                  stage=model.stage, alpha=model.alpha, resolution=model.resolution,
                  options=model.spec.architecture.options.model_dump(),
                  G_ema={k: v.detach().cpu().clone() for k, v in model.G.state_dict().items()}, G=G, D=D, notes=notes)


def _folder_of(ref: str, model: Any) -> Path | None:
    """The folder a loaded model was read from (for its G.* and D.* tensors); None for a run checkpoint."""
    from . import records as R
    from .registry import HUB_PREFIX, resolve

    p = Path(ref).expanduser()
    if p.is_dir():
        return p if R.is_model_folder(p) else None
    if ref.startswith(HUB_PREFIX):
        from .hub import download
        from .registry import parse_hub_ref

        return download(*parse_hub_ref(ref))   # already in the cache: load fetched it
    entry = resolve(ref)
    if entry.kind == "hub":
        from .hub import download

        return download(entry.location, entry.revision)
    return Path(entry.location)

