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


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch) -> None:
    """No test downloads a registered network from its real location (Google Drive, fbaipublicfiles):
    official downloads are off unless a test turns them on against its loopback server
    (tests/zoo/test_download.py)."""
    monkeypatch.setenv("PROGAN_ZOO_OFFLINE", "1")
