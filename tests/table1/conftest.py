from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_thread(one_thread):
    """Every test here runs on one thread (tests/conftest.py says why)."""
    yield
