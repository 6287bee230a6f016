"""Fixtures of the tools tests: the zoo tests' isolation and tiny run, the model exported with its D."""

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


_ZOO = _zoo_fixtures()
isolated = _ZOO.isolated   # the same autouse fixture: no test sees the user's registry or Hub cache


@pytest.fixture(scope="session")
def tiny_model_with_d(tmp_path_factory) -> Path:
    """A 16x16 saved model whose folder holds G_ema, G and D (random weights)."""
    from progan_zoo.zoo.export import export_model

    run = _ZOO.make_run(tmp_path_factory.mktemp("runs") / "tiny-run")
    return export_model(run, tmp_path_factory.mktemp("models") / "tiny-16", with_training=True)


@pytest.fixture
def make_run():
    """The zoo tests' ``make_run(run_dir, spec=..., stage=..., alpha=...)``: a run with random weights."""
    return _ZOO.make_run
