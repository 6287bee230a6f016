"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The tiny nets run fastest on one thread, and far faster than two when other tests share the cores.

    Not autouse here: the folders whose tests train (train/, robustness/, the training conformance
    tests) switch it on for themselves."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
