"""The spec compiler: load -> validate -> to_graph -> build, composed by ``compile_spec``.

Installed as ``progan_zoo.compiler`` (the PyPI name ``compiler`` belongs to another project).
Names are imported on first use (PEP 562), so ``progan-zoo --help`` and the schema tools do not
pay for torch, networkx or jsonschema.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

__all__ = sorted([*_LAZY, "CompiledSpec", "RawSpec", "build", "build_discriminator", "build_generator",
                  "compile_spec", "load", "load_spec", "load_text", "validate"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


@dataclass
class CompiledSpec:
    """Everything a spec compiles to: the raw text, the validated model, the graph and G and D."""

    raw: "RawSpec"
    spec: "Spec"
    graph: "nx.DiGraph"
    G: "nn.Module"
    D: "nn.Module"

    @property
    def sha256(self) -> str:
        """sha256 of the file's exact text."""
        return self.raw.sha256

    @property
    def resolved_sha256(self) -> str:
        """sha256 of the resolved spec (every default written out): the model's identity."""
        from .defaults import resolved_sha256

        return resolved_sha256(self.spec)


def load_spec(path: str | Path) -> "Spec":
    """Load and validate a spec file (no graph, no modules)."""
    from .load import load
    from .validate import validate

    return validate(load(path))


def compile_spec(path: str | Path, *, text: str | None = None) -> CompiledSpec:
    """parse -> validate -> graph -> build. ``text`` compiles a string instead of reading ``path``."""
    from .build import build
    from .graph import to_graph
    from .load import load, load_text
    from .validate import validate

    raw = load_text(text, str(path)) if text is not None else load(path)
    spec = validate(raw)
    graph = to_graph(spec)
    G, D = build(graph)
    return CompiledSpec(raw=raw, spec=spec, graph=graph, G=G, D=D)
