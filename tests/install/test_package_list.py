"""Every folder with an __init__.py ships: pyproject.toml lists packages by hand, so a new subpackage
works in an editable checkout and is missing from the wheel until it is listed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: ROOT / src for name, src in setup["package-dir"].items()}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((name, *rel)))
    missing = sorted(found - set(setup["packages"]))
    assert not missing, f"pyproject.toml [tool.setuptools] packages is missing {missing}"
