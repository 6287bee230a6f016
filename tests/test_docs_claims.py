"""Every test the guarantee docs name exists and runs in CI (issue 18): docs/robustness.md,
docs/metrics.md and the README cite tests by name; each must be selected by the default run or by
.ci/run's second call (-m 'network or ci'), never only by -m slow, gpu or browser."""

from __future__ import annotations

import ast
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("docs/robustness.md", "docs/metrics.md", "README.md")
DEFAULT_OFF = {"slow", "gpu", "network", "browser"}  # pyproject addopts: -m 'not slow and not gpu and ...'
SECOND_CALL = {"network", "ci"}                      # .ci/run: python -m pytest -m 'network or ci'


def _marks(decorators: list[ast.expr]) -> set[str]:
    out = set()
    for dec in decorators:
        for node in ast.walk(dec):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark":
                out.add(node.attr)
    return out


def _module_marks(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            return _marks([node.value])
    return set()


@lru_cache(maxsize=1)
def _tests() -> dict[str, list[tuple[Path, frozenset[str]]]]:
    """test function name -> [(file, its markers including the module's pytestmark)]; test file stem ->
    [(file, the module's markers)] too, for docs that cite a whole file."""
    found: dict[str, list[tuple[Path, frozenset[str]]]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        module = _module_marks(tree)
        found.setdefault(path.stem, []).append((path, frozenset(module)))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.setdefault(node.name, []).append((path, frozenset(module | _marks(node.decorator_list))))
    return found


def _cited() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for name in sorted(set(re.findall(r"\b(test_\w+)\b", (ROOT / doc).read_text()))):
            if not name.endswith("_py"):
                out.append((doc, name))
    return out


@pytest.mark.parametrize("doc,name", _cited(), ids=lambda x: str(x))
def test_every_cited_test_runs_in_ci(doc: str, name: str) -> None:
    assert name in _tests(), f"{doc} cites {name}, which is no test function or file under tests/"
    for path, marks in _tests()[name]:
        runs = not (marks & DEFAULT_OFF) or bool(marks & SECOND_CALL)
        assert runs, f"{doc} cites {name} ({path.relative_to(ROOT)}), which CI never runs (markers {sorted(marks)})"


def test_ci_script_agrees_with_the_readme(tmp_path: Path) -> None:
    """.ci/run's own check (the README's test command and second call) passes, without running the tests."""
    script = (ROOT / ".ci" / "run").read_text()
    check = script.split("export PIP_DISABLE_PIP_VERSION_CHECK")[0].replace('cd "$(dirname "$0")/.."', f'cd "{ROOT}"')
    res = subprocess.run(["bash", "-c", check], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "python -m pytest -m 'network or ci'" in script.split("export PIP_DISABLE_PIP_VERSION_CHECK")[1]
