"""Stage 1: read a spec's YAML keeping the line and column of every key and item."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from .errors import SpecError

PathKey = Sequence[str | int]


@dataclass
class RawSpec:
    """A parsed spec: plain data plus the positions of its keys and items."""

    data: dict[str, Any]         # JSON-like: dict, list, str, int, float, bool, None.
    tree: Any                    # ruamel's CommentedMap, which knows positions.
    file: str                    # Path as the user gave it.
    text: str                    # Exact file content (saved next to trained weights); for a spec with
                                 # `extends:`, the resolved spec, explicit and self-contained.
    # A resolved `extends:` spec mixes nodes of several files: the file a mapping's key positions
    # belong to, by id(mapping) (the whole mapping) or (id(mapping), key) (one key of a merged one).
    origins: dict[Any, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def position(self, path: PathKey, value: bool = False) -> tuple[int | None, int | None]:
        """1-based (line, column) of the deepest node on ``path`` that exists.

        A mapping entry is located at its key, or at its value when ``value`` is true and the
        whole path exists (errors about a value point at the value, errors about a key at the key).
        """
        return self.locate(path, value)[1:]

    def locate(self, path: PathKey, value: bool = False) -> tuple[str, int | None, int | None]:
        """(file, line, column) of the deepest node on ``path``: the file is the one that wrote it,
        a base spec's for a key an `extends:` spec inherits."""
        node, best, where = self.tree, (None, None), self.file
        best_file = where
        for depth, key in enumerate(path):
            try:
                where = self.origins.get(id(node), where)
                if isinstance(node, CommentedMap) and key in node:
                    last = depth == len(path) - 1
                    line, col = node.lc.value(key) if (value and last) else node.lc.key(key)
                    where = self.origins.get((id(node), key), where)
                    best, best_file = (line + 1, col + 1), where
                    node = node[key]
                elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
                    line, col = node.lc.item(key)
                    best, best_file = (line + 1, col + 1), where
                    node = node[key]
                else:
                    break
            except (KeyError, TypeError, AttributeError):
                break
        if best == (None, None) and hasattr(self.tree, "lc"):
            best = (self.tree.lc.line + 1, self.tree.lc.col + 1)
        return (best_file, *best)

    def error(self, path: PathKey, message: str, hint: str | None = None, at_value: bool = False) -> SpecError:
        """A SpecError located at ``path`` (at its value with ``at_value``), in the file that wrote it."""
        file, line, col = self.locate(path, value=at_value)
        return SpecError(message, file, line, col, format_path(path), hint)


def format_path(path: PathKey) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def error_at(raw: RawSpec | None, path: list, message: str, hint: str | None = None, at_value: bool = True) -> SpecError:
    """A SpecError at ``path`` of ``raw``; without the raw spec (a Spec made in code), at the key path only."""
    if raw is None:
        return SpecError(message, key_path=format_path(path), hint=hint)
    return raw.error(path, message, hint, at_value=at_value)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, (bool, ScalarBoolean)) or node is None:
        return None if node is None else bool(node)  # ScalarBoolean (anchored booleans) is an int subclass.
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def load_text(text: str, file: str = "<string>") -> RawSpec:
    """Parse spec text; YAML syntax errors become a SpecError with the parser's position."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or exc.context or "invalid YAML"
        if "duplicate key" in problem:
            raise SpecError(f"YAML error: {problem}", file, line, col, hint="a key may appear once per mapping: "
                            "remove or rename one of them") from None
        if exc.context and exc.problem and exc.context_mark:
            problem += f" ({exc.context} started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        if "mapping values are not allowed" in problem:
            hint = "a line above may lack ': ' after its key, or a value containing ': ' needs quotes"
        elif "\\t" in problem or "\t" in problem:
            hint = "YAML indents with spaces, not tabs"
        else:
            hint = "check indentation, colons, brackets and quotes near this place"
        raise SpecError(f"YAML syntax error: {problem}", file, line, col, hint=hint) from None
    except Exception as exc:  # ruamel raises a few non-marked errors (e.g. duplicate keys)
        raise SpecError(f"YAML error: {exc}", file, hint="fix the YAML syntax") from None
    if not isinstance(tree, CommentedMap):
        lc = getattr(tree, "lc", None)
        line, col = (lc.line + 1, lc.col + 1) if lc is not None and lc.line is not None else (1, 1)
        what = "nothing" if tree is None else f"a {'list' if isinstance(tree, CommentedSeq) else 'single value'}"
        raise SpecError(f"a spec must be a YAML mapping of keys at the top level, found {what}", file, line, col,
                        hint="start with 'spec_version: 2' and write each section as 'key: value' lines") from None
    return RawSpec(data=_plain(tree), tree=tree, file=file, text=text)


def load(path: str | Path) -> RawSpec:
    """Read a spec file, resolving `extends:` (a base spec, path relative to this file) into one
    explicit spec. A missing file is a SpecError too."""
    raw = _read(path)
    if isinstance(raw.tree, CommentedMap) and "extends" in raw.tree:
        raw = _resolve(raw, [Path(path).resolve()])
    return raw


def _resolve(raw: RawSpec, chain: list[Path]) -> RawSpec:
    """``raw`` merged onto its bases (``extends: base.yaml`` or a list, merged in order): mappings merge
    key by key (the later file wins), anything else (lists such as the layer tables, scalars) is
    replaced whole. The result's text is the resolved spec, which stands alone."""
    ext = raw.tree["extends"]
    items = [(["extends"], ext)] if isinstance(ext, str) else [(["extends", i], e) for i, e in enumerate(ext or [])] \
        if isinstance(ext, list) else []
    if not items or any(not isinstance(e, str) or not e.strip() for _, e in items):
        raise raw.error(["extends"], "extends must be the path of a base spec, or a list of them",
                        "e.g. extends: base.yaml (relative to this file)", at_value=True)
    tree, origins, sources = None, {}, []
    for path, rel in items:
        base = _read_base(raw, path, rel, chain)
        origins.update(base.origins)
        sources.append(base.file)
        tree = base.tree if tree is None else _merge(tree, base.tree, base.file, origins)
    tree = _merge(tree, raw.tree, raw.file, origins)
    data = _plain(tree)
    yaml = YAML(typ="rt")
    yaml.default_flow_style = None
    yaml.width = 4096  # one line per value, as written
    out = io.StringIO()
    yaml.dump(data, out)
    text = (f"# Resolved spec: {raw.file}, extending {', '.join(sources)}.\n# Written out whole so it stands "
            f"alone; edit the source files, not this text.\n{out.getvalue()}")
    return RawSpec(data=data, tree=tree, file=raw.file, text=text, origins=origins)


def _read_base(raw: RawSpec, path: list, rel: str, chain: list[Path]) -> RawSpec:
    """One base named by ``extends``, itself resolved; a missing file or a cycle is an error at ``path``."""
    base_path = Path(raw.file).parent / rel
    if base_path.resolve() in chain:
        loop = " -> ".join([p.name for p in chain] + [base_path.name])
        raise raw.error(path, f"extends makes a cycle: {loop}", "a spec may not extend itself, directly or "
                        "through its bases: point one of them at a spec without that chain", at_value=True)
    if not base_path.is_file():
        raise raw.error(path, f"base spec '{rel}' not found (looked for {base_path})",
                        "the path is relative to the file that says extends:", at_value=True)
    base = _read(base_path)
    if not isinstance(base.tree, CommentedMap):
        raise raw.error(path, f"base spec '{rel}' is not a mapping of keys", "extend a spec file", at_value=True)
    if "extends" in base.tree:
        base = _resolve(base, chain + [base_path.resolve()])
    if not base.origins:
        base.origins[id(base.tree)] = base.file
    return base


def _merge(base: CommentedMap, child: CommentedMap, child_file: str, origins: dict[Any, str],
           base_file: str = "") -> CommentedMap:
    """A new mapping: ``base``'s keys, then ``child``'s on top (mappings merged recursively); each key
    keeps its position and the file it came from (``origins``)."""
    out = CommentedMap()
    out.lc.data = {}
    out.lc.line, out.lc.col = child.lc.line, child.lc.col
    base_file = origins.get(id(base), base_file)
    for key in base:
        out[key] = base[key]
        out.lc.data[key] = base.lc.data[key]
        origins[(id(out), key)] = origins.get((id(base), key), base_file)
    for key in child:
        if key == "extends":
            continue
        if isinstance(child[key], CommentedMap) and isinstance(out.get(key), CommentedMap):
            out[key] = _merge(out[key], child[key], child_file, origins, origins[(id(out), key)])
        else:
            out[key] = child[key]
        out.lc.data[key] = child.lc.data[key]
        origins[(id(out), key)] = child_file
    return out


def _read(path: str | Path) -> RawSpec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", str(path), hint="give the path of a .yaml spec, e.g. specs/mnist_32.yaml") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec: {exc.__class__.__name__}", str(path),
                        hint="give a UTF-8 YAML file") from None
    return load_text(text, str(path))
