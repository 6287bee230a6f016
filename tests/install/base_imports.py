"""Run ``progan-zoo ARGS...`` in this process as a base install would see it: any import of a
top-level module that comes from an installed distribution outside the allowed set fails as if that
distribution were not installed. Probes (``importlib.util.find_spec``) are answered
as usual and listed; each blocked import names the file that asked for it (``ours:`` marks
progan-zoo's own code; third-party packages try optional imports of their own and carry on). Prints one JSON line: exit status, blocked imports, probes, allowed distributions used.

Usage: python base_imports.py ALLOWED_JSON ARGS...   (ALLOWED_JSON: a list of normalized names)
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata as md
import json
import os
import re
import sys
from pathlib import Path

ALLOWED = set(json.loads(sys.argv[1]))
TOP_TO_DISTS = md.packages_distributions()
OWN = {"progan_zoo"}          # the package under test (an editable install may not map it)
blocked: list[dict] = []
probed: set[str] = set()
used: set[str] = set()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class BlockOutsideBase(importlib.abc.MetaPathFinder):
    """First finder on sys.meta_path: refuses modules of distributions outside ALLOWED."""

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in sys.stdlib_module_names or top in OWN:
            return None
        dists = TOP_TO_DISTS.get(top)
        if not dists:
            return None                    # not from an installed distribution
        names = {normalize(d) for d in dists}
        if names & ALLOWED:
            used.update(names & ALLOWED)
            return None
        if _probing():
            probed.add(top)                # importlib.util.find_spec only asks; it does not import
            return None
        blocked.append({"module": fullname, "distributions": sorted(names), "by": _importer()})
        raise ModuleNotFoundError(f"No module named {top!r} (blocked: {', '.join(sorted(names))} is not a base "
                                  "dependency)", name=top)


def _probing() -> bool:
    """Called from importlib.util.find_spec (torch probes optional packages that way at import time)?"""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        where = code.co_filename.replace("\\", "/")
        if code.co_name == "find_spec" and (where == "<frozen importlib.util>" or where.endswith("importlib/util.py")):
            return True
        frame = frame.f_back
    return False


def _importer() -> str:
    """The file whose code asked for the import (the first frame outside the import machinery), and
    whether it is ours: 'ours:<path>' or '<path>'."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                 or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    where = frame.f_code.co_filename if frame is not None else "?"
    return ("ours:" if any(where.startswith(r) for r in _our_roots()) else "") + where


def _our_roots() -> list[str]:
    """Where our own code lives (an editable install maps compiler/ and specs/ from outside progan_zoo/)."""
    mods = [sys.modules.get(n) for n in ("progan_zoo", "progan_zoo.compiler", "progan_zoo.specs")]
    return [str(Path(m.__file__).parent) + os.sep for m in mods if m is not None and getattr(m, "__file__", None)]


sys.meta_path.insert(0, BlockOutsideBase())
from progan_zoo.cli import main  # noqa: E402

rc = main(sys.argv[2:])
print(json.dumps({"rc": rc, "blocked": blocked, "probed": sorted(probed), "used": sorted(used)}))
sys.exit(rc)
