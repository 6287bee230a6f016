"""Stage 1: read a spec's YAML keeping the line and column of every key and item."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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
    text: str                    # Exact file content (saved next to trained weights).

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def position(self, path: PathKey, value: bool = False) -> tuple[int | None, int | None]:
        """1-based (line, column) of the deepest node on ``path`` that exists.

        A mapping entry is located at its key, or at its value when ``value`` is true and the
        whole path exists (errors about a value point at the value, errors about a key at the key).
        """
        node, best = self.tree, (None, None)
        for depth, key in enumerate(path):
            try:
                if isinstance(node, CommentedMap) and key in node:
                    last = depth == len(path) - 1
                    line, col = node.lc.value(key) if (value and last) else node.lc.key(key)
                    best = (line + 1, col + 1)
                    node = node[key]
                elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
                    line, col = node.lc.item(key)
                    best = (line + 1, col + 1)
                    node = node[key]
                else:
                    break
            except (KeyError, TypeError, AttributeError):
                break
        if best == (None, None) and hasattr(self.tree, "lc"):
            best = (self.tree.lc.line + 1, self.tree.lc.col + 1)
        return best

    def error(self, path: PathKey, message: str, hint: str | None = None, at_value: bool = False) -> SpecError:
        """A SpecError located at ``path`` (at its value with ``at_value``)."""
        line, col = self.position(path, value=at_value)
        return SpecError(message, self.file, line, col, format_path(path), hint)


def format_path(path: PathKey) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


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
    """Read a spec file. A missing file is a SpecError too."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", str(path), hint="give the path of a .yaml spec, e.g. specs/mnist_32.yaml") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec: {exc.__class__.__name__}", str(path),
                        hint="give a UTF-8 YAML file") from None
    return load_text(text, str(path))
