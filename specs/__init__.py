"""The specs shipped with progan-zoo, by name: installed as ``progan_zoo.specs`` (the YAML files beside
this file), so ``progan-zoo train mnist-32`` works from any directory after ``pip install``.

A spec's name is its ``name:`` field (``lsun-bedroom-256``); its file stem (``lsun_256``) is accepted
too. This module imports nothing heavy, so name lookups keep ``progan-zoo`` fast.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from progan_zoo.errors import UsageError

# The top-level ``name:`` line; the schema allows [a-z0-9._-] only, optionally quoted.
_NAME = re.compile(r"""^name:\s*["']?([a-z0-9][a-z0-9._-]*)["']?\s*(?:#.*)?$""", re.MULTILINE)


def spec_files() -> dict[str, Path]:
    """Shipped spec name (its ``name:`` field) -> its YAML file, sorted by name."""
    found = {}
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".yaml"):
            path = Path(str(entry))
            m = _NAME.search(path.read_text(encoding="utf-8"))
            found[m.group(1) if m else path.stem] = path
    return dict(sorted(found.items()))


def spec_names() -> list[str]:
    """The names of the shipped specs."""
    return list(spec_files())


def resolve_spec(spec: str) -> str:
    """A spec argument as the user gave it -> a file path. An existing file wins; then a shipped spec's
    name (``mnist-32``) or file stem (``mnist_32``); a word that is neither is a UsageError listing the
    known names. Anything that looks like a path (a ``/`` or a ``.yaml``/``.yml`` ending) is returned
    unchanged, so the loader reports the missing file with its own message."""
    text = str(spec)
    if Path(text).exists() or "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        return text
    files = spec_files()
    by_stem = {p.stem: p for p in files.values()}
    if text in files or text in by_stem:
        return str(files.get(text) or by_stem[text])
    raise UsageError(f"{text}: no such spec file or shipped spec "
                     f"(hint: give a .yaml path or one of: {', '.join(files)}; progan-zoo specs lists them)")
