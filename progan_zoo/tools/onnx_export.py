"""The generator outside progan-zoo: an ONNX file (onnxruntime) or a ``torch.export`` program (.pt2).

Both hold one stage of the model with its fade weight fixed: input ``z`` float32 [batch, z_dim] (the
batch axis is dynamic), output ``images`` float32 [batch, C, R, R] in nominal [-1, 1], not clamped, as
``G(z)`` returns (docs/architecture.md). Pixels: ``clip(rint(x * 127.5 + 127.5), 0, 255)``. The
ONNX file is made by torch's exporter (the torch.export-based one, hence onnxscript) and checked against
PyTorch under onnxruntime before it is kept.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from progan_zoo.errors import RunFailure, UsageError
from progan_zoo.fsutil import replaced_atomically

from .extras import need

if TYPE_CHECKING:
    from progan_zoo.zoo.model import ZooGenerator

FORMATS = ("onnx", "torch-export")
DEFAULT_OPSET = 18
TOLERANCE = 1e-4   # max |ONNX - PyTorch| the export must meet (float32 on the CPU)


class FixedStage(nn.Module):
    """``z -> images`` of one stage with its fade weight fixed: the one input exporters see."""

    def __init__(self, model: "ZooGenerator") -> None:
        super().__init__()
        self.G = model.G
        self.alpha = float(model.alpha)   # < 1 only for a model saved mid fade-in; baked in as a constant

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z, alpha=self.alpha)                                   # [NCHW]


def _stage(model: "ZooGenerator", resolution: int | None) -> "ZooGenerator":
    model = model.at_resolution(int(resolution)) if resolution else model
    return model.to("cpu").eval()


def _example(model: "ZooGenerator") -> torch.Tensor:
    # A batch of 2, not 1: torch.export specializes size-1 axes, which would pin the batch.
    return torch.zeros(2, model.z_dim)


def export_onnx(model: "ZooGenerator", out: str | Path, resolution: int | None = None,
                opset: int = DEFAULT_OPSET, check: bool = True) -> tuple[Path, float | None]:
    """Write ``out`` (.onnx) for ``model`` at ``resolution`` (default: its own); returns the path and, with
    ``check``, the max |ONNX - PyTorch| on 8 seeded latents (an error if above ``TOLERANCE``)."""
    need("onnx", "onnx", "export-onnx")
    need("onnxscript", "onnx", "export-onnx")
    model = _stage(model, resolution)
    net = FixedStage(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    out = Path(out)
    with replaced_atomically(out) as tmp:
        program = torch.onnx.export(net, (_example(model),), input_names=["z"], output_names=["images"],
                                    dynamic_shapes={"z": {0: batch}}, opset_version=opset, dynamo=True,
                                    external_data=False, verbose=False)
        meta = {"progan_zoo.name": model.name, "progan_zoo.resolution": str(model.resolution),
                "progan_zoo.z_dim": str(model.z_dim), "progan_zoo.channels": str(model.image_channels),
                "progan_zoo.alpha": str(model.alpha), "progan_zoo.source": str(model.source),
                "progan_zoo.output": "images in nominal [-1, 1], not clamped; uint8 = clip(rint(x*127.5+127.5))"}
        for key, value in meta.items():
            program.model.metadata_props[key] = value
        program.save(str(tmp))
        diff = check_onnx(tmp, model) if check else None
    return out, diff


def check_onnx(path: str | Path, model: "ZooGenerator", n: int = 8, seed: int = 0) -> float:
    """Max |ONNX - PyTorch| over ``n`` seeded latents under onnxruntime's CPU provider; RunFailure past TOLERANCE."""
    ort = need("onnxruntime", "onnx", "checking an ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = model.latents(n, seed)
    got = session.run(["images"], {"z": z.numpy()})[0]
    with torch.no_grad():
        want = FixedStage(model)(z).numpy()
    if got.shape != want.shape:
        raise RunFailure(f"{path}: ONNX output has shape {list(got.shape)}, PyTorch {list(want.shape)}")
    diff = float(np.abs(got - want).max())
    if not diff <= TOLERANCE:
        raise RunFailure(f"{path}: ONNX output differs from PyTorch by {diff:.3g} (> {TOLERANCE}); "
                         "report it with the model and torch/onnx versions")
    return diff


def export_program(model: "ZooGenerator", out: str | Path, resolution: int | None = None) -> tuple[Path, float]:
    """Write a ``torch.export`` program (.pt2) of ``model`` at ``resolution``; returns the path and the max
    |loaded program - model| on 8 seeded latents. Load it with ``torch.export.load(path).module()``."""
    model = _stage(model, resolution)
    net = FixedStage(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    program = torch.export.export(net, (_example(model),), dynamic_shapes={"z": {0: batch}})
    extra = {"progan_zoo.json": json.dumps({"name": model.name, "resolution": model.resolution,
                                            "z_dim": model.z_dim, "channels": model.image_channels,
                                            "alpha": model.alpha, "source": str(model.source)})}
    # Through a buffer: torch.export.save wants a name ending in .pt2, and the file is written atomically.
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files=extra)
    buf.seek(0)
    z = model.latents(8, 0)
    with torch.no_grad():
        diff = float((torch.export.load(buf).module()(z) - net(z)).abs().max())
    if not diff <= TOLERANCE:
        raise RunFailure(f"{out}: the exported program differs from the model by {diff:.3g} (> {TOLERANCE})")
    out = Path(out)
    with replaced_atomically(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    return out, diff


def export(model: "ZooGenerator", out: str | Path, fmt: str = "onnx", resolution: int | None = None,
           opset: int = DEFAULT_OPSET, check: bool = True) -> tuple[Path, float | None]:
    """``export_onnx`` or ``export_program`` by ``fmt`` (one of ``FORMATS``)."""
    if fmt == "onnx":
        return export_onnx(model, out, resolution=resolution, opset=opset, check=check)
    if fmt == "torch-export":
        return export_program(model, out, resolution=resolution)
    raise UsageError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
