"""Stage 1: read a spec's YAML keeping the line and column of every key and item."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

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

    def position(self, path: PathKey) -> tuple[int | None, int | None]:
        """1-based (line, column) of the deepest node on ``path`` that exists."""
        node, best = self.tree, (None, None)
        for key in path:
            try:
                if isinstance(node, CommentedMap) and key in node:
                    line, col = node.lc.key(key)
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

    def error(self, path: PathKey, message: str, hint: str | None = None) -> SpecError:
        line, col = self.position(path)
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
    if isinstance(node, bool) or node is None:
        return node
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
        raise SpecError(f"YAML syntax error: {exc.problem or exc.context}", file, line, col,
                        hint="check indentation and quoting near this place") from None
    except Exception as exc:  # ruamel raises a few non-marked errors (e.g. duplicate keys)
        raise SpecError(f"YAML error: {exc}", file, hint="fix the YAML syntax") from None
    if not isinstance(tree, CommentedMap):
        raise SpecError("a spec must be a YAML mapping at the top level", file, 1, 1,
                        hint="start with 'spec_version: 1'")
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
