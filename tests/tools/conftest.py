"""Fixtures of the tools tests: the zoo tests' tiny model (exported with its D), and an isolated registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_ZOO_CONFTEST = Path(__file__).parents[1] / "zoo" / "conftest.py"


def _zoo_fixtures():
    # The zoo tests' run builder, loaded by path: one definition of a fake run for both test folders.
    spec = importlib.util.spec_from_file_location("_zoo_conftest_for_tools", _ZOO_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PROGAN_ZOO_REGISTRY", str(home / "registry.json"))
    monkeypatch.setenv("PROGAN_ZOO_HOME", str(home / "zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_with_d(tmp_path_factory) -> Path:
    """A 16x16 saved model whose folder holds G_ema, G and D (random weights)."""
    from progan_zoo.zoo.export import export_model

    run = _zoo_fixtures().make_run(tmp_path_factory.mktemp("runs") / "tiny-run")
    return export_model(run, tmp_path_factory.mktemp("models") / "tiny-16", with_training=True)
