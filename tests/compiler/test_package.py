"""The package's public names: stage functions are not shadowed by their submodules."""

from __future__ import annotations

import importlib
import subprocess
import sys


def test_stage_functions_win_over_submodules_of_the_same_name() -> None:
    for sub in ("load", "validate", "build"):
        importlib.import_module(f"progan_zoo.compiler.{sub}")
    from progan_zoo.compiler import build, load, validate

    assert callable(load) and callable(validate) and callable(build)
    assert load.__module__ == "progan_zoo.compiler.load"


def test_importing_the_compiler_does_not_import_torch() -> None:
    code = "import sys, progan_zoo.compiler; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
