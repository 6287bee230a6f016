"""progan-zoo: Progressive Growing of GANs (Karras et al., ICLR 2018) as specs, a trainer, metrics and a zoo."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "compile_spec", "list_models", "load"]


def __getattr__(name: str):
    # Lazy: `import progan_zoo` stays cheap; torch is imported when a function is used.
    if name == "compile_spec":
        from progan_zoo.compiler import compile_spec
        return compile_spec
    if name in ("load", "list_models"):
        from progan_zoo import zoo
        return getattr(zoo, name)
    raise AttributeError(f"module 'progan_zoo' has no attribute {name!r}")
