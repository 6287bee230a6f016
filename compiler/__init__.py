"""The spec compiler: load -> validate -> to_graph -> build, composed by ``compile_spec``.

Installed as ``progan_zoo.compiler`` (the PyPI name ``compiler`` belongs to another project).
Importing it loads the stages (pydantic, jsonschema, networkx; not torch, which ``build`` imports
when it makes modules). Their names are bound eagerly: a lazy table would save nothing, since
``validate`` and ``build`` already import the schema and the graph (measured: ``import
progan_zoo.compiler`` loads ``graph`` and ``schema`` either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

# The stage functions share their names with the submodules that define them (load, validate,
# build): each from-import runs after its submodule's import, so the function wins for good.
from .build import build, build_discriminator, build_generator
from .errors import SpecError
from .graph import param_count, to_graph
from .load import RawSpec, load, load_text
from .schema import SPEC_VERSIONS, Spec, json_schema
from .validate import validate

if TYPE_CHECKING:
    import networkx as nx
    from torch import nn

__all__ = ["STAGES", "CompiledSpec", "RawSpec", "SPEC_VERSIONS", "Spec", "SpecError", "build", "build_discriminator",
           "build_generator", "compile_spec", "json_schema", "load", "load_spec", "load_text", "param_count",
           "to_graph", "validate"]


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
        """sha256 of the file's exact text."""
        return self.raw.sha256

    def build_generator(self) -> "nn.Module":
        """A fresh generator of this spec (weights N(0,1), biases 0)."""
        return build_generator(self.graph)

    def build_discriminator(self) -> "nn.Module":
        """A fresh discriminator of this spec."""
        return build_discriminator(self.graph)

    @property
    def resolved_sha256(self) -> str:
        """sha256 of the resolved spec (every default written out): the model's identity."""
        from .defaults import resolved_sha256

        return resolved_sha256(self.spec)


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
