"""Subcommands of the tools: export-onnx, video, project.

No torch at module level: ``progan-zoo --help`` imports this file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from progan_zoo.zoo.cli import _load, _model_args, _positive, _psi


# ---------------------------------------------------------------------------------------- export-onnx
def add_export_onnx_arguments(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--out", default=None,
                   help="file to write (default: NAME-RES.onnx, or NAME-RES.pt2 with --format torch-export)")
    p.add_argument("--format", choices=("onnx", "torch-export"), default="onnx",
                   help="onnx (default; run it with onnxruntime) or torch-export (a torch.export program, "
                        "loaded with torch.export.load)")
    p.add_argument("--opset", type=_positive, default=18, help="ONNX opset (default 18)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the onnxruntime-vs-PyTorch comparison (to 1e-4) made before the file is kept")


def run_export_onnx(args: argparse.Namespace) -> int:
    from .onnx_export import export

    args.device = "cpu"   # exported on the CPU: the check compares float32 CPU results
    G = _load(args)
    suffix = "onnx" if args.format == "onnx" else "pt2"
    out = Path(args.out or f"{G.name}-{G.resolution}.{suffix}")
    path, diff = export(G, out, fmt=args.format, opset=args.opset, check=not args.no_check)
    checked = "not checked" if diff is None else f"max |{args.format} - PyTorch| {diff:.2g}"
    print(f"wrote {path}: {G.name} at {G.resolution}x{G.resolution}, input z [batch, {G.z_dim}] float32, "
          f"output images [batch, {G.image_channels}, {G.resolution}, {G.resolution}] in [-1, 1]; {checked}")
    return 0
