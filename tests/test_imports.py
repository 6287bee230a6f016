"""Nothing in the package imports in a circle (docs/architecture.md): checked from the source by
tools/imports.py, function-local imports included."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import imports  # noqa: E402


def test_no_import_circle():
    assert imports.circles(imports.graph()) == []


def test_the_checker_sees_a_circle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert imports.circles(g) == [["a", "b", "c"]]


def test_function_local_imports_count(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x.y\n"
                 "def f():\n    from .z import w\n    from . import q\n")
    known = {"x.m": f, "x.y": f, "x.z": f, "x.q": f, "x": f}
    assert imports.imports_of("x.m", f, known) == {"x.z", "x.q"}
    assert imports.imports_of("x.m", f, known, top_only=True) == set()


def test_upward_calls_stay_inside_functions():
    """Each allowed upward import runs only when its function is called, never while modules load."""
    known = imports.modules()
    for (src, dst), why in imports.UPWARD_CALLS.items():
        assert dst in imports.imports_of(src, known[src], known), f"{src} -> {dst} is listed but gone: drop it"
        assert dst not in imports.imports_of(src, known[src], known, top_only=True), \
            f"{src} imports {dst} at module level; UPWARD_CALLS allows it only inside functions ({why})"
