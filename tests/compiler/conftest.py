"""Shared paths and builders for the compiler tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "specs").glob("*.yaml"))
TINY = [REPO / "tests" / "fixtures" / "specs" / "tiny_16.yaml", REPO / "tests" / "fixtures" / "specs" / "tiny_mnist_16.yaml"]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These networks are tiny: one intra-op thread is as fast alone and far faster when other
    test runs share the two cores (OpenMP threads then spin against each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
