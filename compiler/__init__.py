"""The spec compiler: load -> validate -> to_graph -> build, composed by ``compile_spec``.

Installed as ``progan_zoo.compiler`` (the PyPI name ``compiler`` belongs to another project).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from .build import build, build_discriminator, build_generator
from .errors import SpecError
from .graph import param_count, to_graph
from .load import RawSpec, load, load_text
from .schema import SPEC_VERSIONS, Spec, json_schema
from .validate import validate

__all__ = [
    "CompiledSpec", "RawSpec", "SPEC_VERSIONS", "Spec", "SpecError", "build", "build_discriminator",
    "build_generator", "compile_spec", "json_schema", "load", "load_spec", "load_text", "param_count",
    "to_graph", "validate",
]


@dataclass
class CompiledSpec:
    """Everything a spec compiles to: the raw text, the validated model, the graph and G and D."""

    raw: RawSpec
    spec: Spec
    graph: nx.DiGraph
    G: "nn.Module"
    D: "nn.Module"

    @property
    def sha256(self) -> str:
        return self.raw.sha256


def load_spec(path: str | Path) -> Spec:
    """Load and validate a spec file (no graph, no modules)."""
    return validate(load(path))


def compile_spec(path: str | Path, *, text: str | None = None) -> CompiledSpec:
    """parse -> validate -> graph -> build. ``text`` compiles a string instead of reading ``path``."""
    raw = load_text(text, str(path)) if text is not None else load(path)
    spec = validate(raw)
    graph = to_graph(spec)
    G, D = build(graph)
    return CompiledSpec(raw=raw, spec=spec, graph=graph, G=G, D=D)
