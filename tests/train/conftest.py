from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "specs"


@pytest.fixture
def tiny_spec() -> Path:
    """4 -> 16 px greyscale on the built-in digits; minibatch 8, 25 steps per stabilize and per fade."""
    return FIXTURES / "tiny_mnist_16.yaml"


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny nets run fastest on one thread, and far faster than two when other tests share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
