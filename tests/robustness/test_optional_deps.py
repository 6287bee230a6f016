"""A missing optional package ends in one line naming the extra to install, exit status 2 (issue 18)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from progan_zoo import cli

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "specs" / "tiny_mnist_16.yaml"


def test_graph_picture_without_matplotlib(tmp_path, monkeypatch, capsys) -> None:
    """`compile --graph g.png` with neither graphviz nor matplotlib: exit 2 and the plots extra, no traceback."""
    from progan_zoo.compiler import draw

    monkeypatch.setattr(draw.shutil, "which", lambda _name: None)  # no graphviz `dot`
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ModuleNotFoundError
    code = cli.main(["compile", str(TINY), "--graph", str(tmp_path / "g.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ['progan-zoo compile: error: this needs the optional package matplotlib '
                   '(hint: pip install "progan-zoo[plots]")']
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("module", sorted(cli.OPTIONAL_PACKAGES))
def test_missing_module_is_exit_2_with_its_extra(module: str) -> None:
    package, extra = cli.OPTIONAL_PACKAGES[module]
    code, line = cli._classify(ModuleNotFoundError(f"No module named '{module}'", name=f"{module}.sub"))
    assert code == 2 and f'pip install "progan-zoo[{extra}]"' in line and package in line
    assert cli._classify(ModuleNotFoundError("No module named 'x'", name="not_optional"))[0] == 1


def test_every_named_extra_exists_and_brings_its_package() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, (package, extra) in cli.OPTIONAL_PACKAGES.items():
        assert extra in extras, f"{module}: extra {extra} missing from pyproject.toml"
        assert any(req.split("=")[0].split(">")[0].strip() == package for req in extras[extra]), (module, extra)
    for extra, requirements in extras.items():  # and every extra's package is known here (but the test extra's)
        names = {req.split("=")[0].split(">")[0].strip() for req in requirements}
        assert extra == "test" or names <= {p for p, _ in cli.OPTIONAL_PACKAGES.values()}, extra
