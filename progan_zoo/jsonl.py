"""JSON files and JSON-lines files (a run's ``log.jsonl``, a benchmark's ``--json`` output): the one reader
of each.

A broken file or line is a one-line error naming the file (and line) and what to do about it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from progan_zoo.errors import UsageError, UserError


def read_records(path: str | Path, hint: str, what: str = "file") -> list[tuple[int, Any]]:
    """(line number, parsed value) of every non-blank line; ``hint`` ends the error of an unreadable
    file (called ``what``) or of a line that is not JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the {what} ({exc.__class__.__name__}) (hint: {hint})") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not a JSON line ({exc.msg}) (hint: {hint})") from None
    return out


def read_json(path: str | Path, fix: str | None = None) -> Any:
    """The parsed contents of a JSON file; text that is not JSON is a ``UserError`` naming the file, ending
    with ``fix`` where given. A missing file raises ``FileNotFoundError`` for the caller to decide."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})" + (f"; {fix}" if fix else "")) from None
