"""The spec compiler: load -> validate -> to_graph -> build, composed by ``compile_spec``.

Installed as ``progan_zoo.compiler`` (the PyPI name ``compiler`` belongs to another project).
Names are imported on first use (PEP 562), so ``progan-zoo --help`` and the schema tools do not
pay for torch, networkx or jsonschema.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import networkx as nx
    from torch import nn

    from .build import build, build_discriminator, build_generator
    from .errors import SpecError
    from .graph import param_count, to_graph
    from .load import RawSpec, load, load_text
    from .schema import SPEC_VERSIONS, Spec, json_schema
    from .validate import validate

# The stage functions share their names with the submodules that define them (load, validate,
# build). Importing a submodule sets the package attribute of that name to the module, so these
# are bound eagerly: the from-import runs after the submodule import and the function wins for good.
# None of the three imports torch at module level.
from .build import build, build_discriminator, build_generator  # noqa: E402
from .load import RawSpec, load, load_text  # noqa: E402
from .validate import validate  # noqa: E402

# Other public names, imported on first use: public name -> submodule that defines it.
_LAZY = {
    "SpecError": "errors",
    "param_count": "graph", "to_graph": "graph",
    "SPEC_VERSIONS": "schema", "Spec": "schema", "json_schema": "schema",
}

__all__ = sorted([*_LAZY, "STAGES", "CompiledSpec", "RawSpec", "build", "build_discriminator", "build_generator",
                  "compile_spec", "load", "load_spec", "load_text", "validate"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


STAGES = ("load", "validate", "graph", "build")


@dataclass
class CompiledSpec:
    """Everything a spec compiles to: the raw text, the validated model, the graph and G and D.

    A compile stopped early (``until=``) leaves the later fields None; ``build_generator`` and
    ``build_discriminator`` make further fresh networks from the same graph."""

    raw: "RawSpec"
    spec: "Spec | None" = None
    graph: "nx.DiGraph | None" = None
    G: "nn.Module | None" = None
    D: "nn.Module | None" = None

    @property
    def sha256(self) -> str:
        return self.raw.sha256

    def build_generator(self) -> "nn.Module":
        """A fresh generator of this spec (weights N(0,1), biases 0)."""
        from .build import build_generator

        return build_generator(self.graph)

    def build_discriminator(self) -> "nn.Module":
        """A fresh discriminator of this spec."""
        from .build import build_discriminator

        return build_discriminator(self.graph)


def load_spec(path: str | Path) -> "Spec":
    """Load and validate a spec file (no graph, no modules)."""
    return compile_spec(path, until="validate").spec


def compile_spec(path: str | Path, *, text: str | None = None, until: str = "build", nets: str = "GD",
                 after_load: Callable[["RawSpec"], None] | None = None,
                 before_build: Callable[[CompiledSpec], None] | None = None) -> CompiledSpec:
    """load -> validate -> to_graph -> build: the one way from a spec to modules.

    ``text`` compiles a string instead of reading ``path`` (``path`` then only names it in errors).
    ``until`` stops after a stage (one of ``STAGES``); ``nets`` says which networks the build stage
    makes ("GD", "G" or "D"; G first, so fresh weights draw the same random numbers). Two hooks let
    a caller act between stages: ``after_load(raw)`` before the spec is validated (e.g. check its
    sha256 against a record), and ``before_build(compiled)`` (raw, spec and graph filled in) before
    any weight is made (e.g. the trainer's memory preflight and its seed).
    """
    from .build import build_discriminator, build_generator
    from .graph import to_graph
    from .load import load, load_text
    from .validate import validate

    if until not in STAGES:
        raise ValueError(f"until={until!r}: give one of {', '.join(STAGES)}")
    raw = load_text(text, str(path)) if text is not None else load(path)
    out = CompiledSpec(raw=raw)
    if after_load is not None:
        after_load(raw)
    if until == "load":
        return out
    out.spec = validate(raw)
    if until == "validate":
        return out
    out.graph = to_graph(out.spec)
    if until == "graph":
        return out
    if before_build is not None:
        before_build(out)
    out.G = build_generator(out.graph) if "G" in nets else None
    out.D = build_discriminator(out.graph) if "D" in nets else None
    return out
