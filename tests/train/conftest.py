from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "specs"


@pytest.fixture
def tiny_spec() -> Path:
    """4 -> 16 px greyscale on the built-in digits; minibatch 8, 25 steps per stabilize and per fade."""
    return FIXTURES / "tiny_mnist_16.yaml"


@pytest.fixture(autouse=True)
def one_thread(one_thread):
    """Every test here runs on one thread (tests/conftest.py says why)."""
    yield
