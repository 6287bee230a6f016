"""JSON-lines files (a run's ``log.jsonl``, a benchmark's ``--json`` output): the one reader.

A broken line is a one-line ``UsageError`` naming ``file:line`` and what to do about it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from progan_zoo.errors import UsageError


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
