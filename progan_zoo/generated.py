"""Generated blocks in the docs: text between a BEGIN and an END marker that a command rewrites and a
test checks. The one writer of them: the shipped-models table (progan_zoo/zoo/docs_tables.py), the cost
tables (compiler/cost_report.py) and the spec field reference (compiler/reference.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def splice(text: str, begin: str, end: str, body: str, where: Path) -> str:
    """``text`` with the block between the markers replaced by ``body``."""
    if begin not in text or end not in text:
        raise ValueError(f"{where} lacks the generated-block markers; add the lines\n{begin}\n{end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def is_current(path: Path, begin: str, end: str, body: str) -> bool:
    """True when the committed block in ``path`` equals ``body``."""
    text = path.read_text()
    try:
        return splice(text, begin, end, body, path) == text
    except ValueError:
        return False


def command(prog: str, path: Path, begin: str, end: str, render: Callable[[], str],
            argv: list[str] | None = None) -> int:
    """``--docs`` rewrites the block, ``--check`` exits 1 when it is stale, neither prints it."""
    p = argparse.ArgumentParser(prog=prog, description=f"Rewrite or check a generated block of {path}.")
    p.add_argument("--docs", action="store_true", help=f"rewrite the generated block in {path}")
    p.add_argument("--check", action="store_true", help="exit 1 if it is stale")
    args = p.parse_args(argv)
    if args.check:
        if not is_current(path, begin, end, render()):
            print(f"stale: {path} (run: {prog} --docs)", file=sys.stderr)
            return 1
        return 0
    if args.docs:
        path.write_text(splice(path.read_text(), begin, end, render(), path))
        print(f"wrote the generated block of {path}")
        return 0
    sys.stdout.write(render())
    return 0
