"""Optional packages of the tools: a missing one is one line naming the extra to install (exit 2)."""

from __future__ import annotations

import importlib
from types import ModuleType

from progan_zoo.errors import UserError

#: extra -> the packages it installs (pyproject.toml's [project.optional-dependencies])
EXTRAS = {
    "onnx": "onnx, onnxscript and onnxruntime",
    "video": "imageio and imageio-ffmpeg",
}


def need(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise a UserError saying which extra brings it (``what`` needs it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what} needs the package {module.split('.')[0]} ({EXTRAS[extra]}): "
                        f"pip install 'progan-zoo[{extra}]'") from None
