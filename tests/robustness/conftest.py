from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny nets run fastest on one thread, and far faster than two when other tests share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
