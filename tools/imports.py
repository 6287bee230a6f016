"""The package's import graph, read from the source with ``ast`` (nothing is imported or run).

Every ``import`` counts, at module level or inside a function (a function-local import that closes
a circle is still a circle), except those under ``if TYPE_CHECKING:`` and a script's
``if __name__ == "__main__":``. Modules are files:
``progan_zoo.zoo.sources.folder``; the compiler's files are named ``progan_zoo.compiler.*`` as
installed.

    python tools/imports.py            # print the circles (none: exit 0) and the floor of each package
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"progan_zoo": REPO / "progan_zoo", "progan_zoo.compiler": REPO / "compiler"}

# Imports that point up on purpose, each with its reason. Every one must stay inside a function (a test
# checks it), so it runs when the method is called, never while modules load. The one case: the loaded
# generator's Hugging Face-style methods (issue 22: ``from_pretrained``, ``save_pretrained``,
# ``push_to_hub`` on the object ``load`` returns) are verbs of the loader, the Hub and the folder source,
# which all build that same class; a class cannot offer them without reaching up at call time.
UPWARD_CALLS: dict[tuple[str, str], str] = {
    ("progan_zoo.zoo.hubmixin", "progan_zoo.zoo.loader"): "from_pretrained falls back to load()",
    ("progan_zoo.zoo.hubmixin", "progan_zoo.zoo.hub"): "Hub download, config name and upload",
    ("progan_zoo.zoo.hubmixin", "progan_zoo.zoo.sources.folder"): "from_pretrained opens a saved folder",
}


def modules() -> dict[str, Path]:
    """Module name -> file, for every file of the package."""
    out = {}
    for pkg, root in ROOTS.items():
        for f in sorted(root.rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([pkg, *parts])] = f
        for f in sorted([*root.rglob("*.so"), *root.rglob("*.c")]):  # compiled extensions (the SWD kernel)
            parts = list(f.relative_to(root).parent.parts) + [f.name.split(".")[0]]
            out[".".join([pkg, *parts])] = f
    return out


def _skipped_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        test = ast.unparse(node.test) if isinstance(node, ast.If) else ""
        if "TYPE_CHECKING" in test or "__main__" in test:
            for sub in node.body:
                for n in ast.walk(sub):
                    if hasattr(n, "lineno"):
                        lines.add(n.lineno)
    return lines


def imports_of(name: str, file: Path, known: dict[str, Path], top_only: bool = False) -> set[str]:
    """The package modules ``name`` imports (each resolved to the deepest module that exists);
    ``top_only``: only those outside any function, which run while the module loads."""
    if file.suffix != ".py":
        return set()
    tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    skip = _skipped_lines(tree)
    if top_only:
        skip |= {n.lineno for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f) if hasattr(n, "lineno") and n is not f}
    is_pkg = file.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                head = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(head + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import mod`` depends on the module; ``from pkg import name`` on pkg's __init__.
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    """Every module's imports, less the UPWARD_CALLS edges."""
    known = modules()
    return {name: {t for t in imports_of(name, f, known) if (name, t) not in UPWARD_CALLS}
            for name, f in known.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    found = circles(graph())
    for group in found:
        print("circle: " + " <-> ".join(group))
    if not found:
        print("no import circle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
