"""The model zoo: saved model folders, ``load`` by name / folder / ``hf-hub:``, publishing, leaderboard.

Importing this package is cheap (no torch): ``progan-zoo --help`` imports ``progan_zoo.zoo.cli``.
The functions below are imported on first use.
"""

from __future__ import annotations

__all__ = ["ModelEntry", "ZooGenerator", "export_model", "list_models", "load", "publish"]

_LAZY = {
    "load": ("progan_zoo.zoo.loader", "load"),
    "list_models": ("progan_zoo.zoo.registry", "list_models"),
    "ModelEntry": ("progan_zoo.zoo.registry", "ModelEntry"),
    "ZooGenerator": ("progan_zoo.zoo.model", "ZooGenerator"),
    "export_model": ("progan_zoo.zoo.export", "export_model"),
    "publish": ("progan_zoo.zoo.publish", "publish"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'progan_zoo.zoo' has no attribute {name!r}")
