"""MS-SSIM against a direct NumPy/SciPy statement of the official metrics/ms_ssim.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from progan_zoo.metrics import msssim as M


def _ref_gauss(size: int, sigma: float) -> np.ndarray:
    offset, start, stop = 0.0, -(size // 2), size // 2 + 1
    if size % 2 == 0:
        offset, stop = 0.5, stop - 1
    x, y = np.mgrid[offset + start : stop, offset + start : stop]
    g = np.exp(-((x**2 + y**2) / (2.0 * sigma**2)))
    return g / g.sum()


def _ref_ssim(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, h, w, _ = a.shape
    size = min(11, h, w)
    sigma = size * 1.5 / 11
    win = _ref_gauss(size, sigma).reshape(1, size, size, 1)
    mu1, mu2 = signal.fftconvolve(a, win, mode="valid"), signal.fftconvolve(b, win, mode="valid")
    s11 = signal.fftconvolve(a * a, win, mode="valid") - mu1 * mu1
    s22 = signal.fftconvolve(b * b, win, mode="valid") - mu2 * mu2
    s12 = signal.fftconvolve(a * b, win, mode="valid") - mu1 * mu2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    v1, v2 = 2.0 * s12 + c2, s11 + s22 + c2
    ssim = np.mean(((2.0 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2), axis=(1, 2, 3))
    return ssim, np.mean(v1 / v2, axis=(1, 2, 3))


def reference_msssim(img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
    """Official algorithm on NHWC float images, per pair (the official returns their mean)."""
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    a, b = img1.astype(np.float32), img2.astype(np.float32)
    ms, cs = [], []
    for _ in range(5):
        s, c = _ref_ssim(a, b)
        ms.append(s)
        cs.append(c)
        a, b = [(x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) * 0.25 for x in (a, b)]
    ms, cs = np.clip(np.asarray(ms), 0, np.inf), np.clip(np.asarray(cs), 0, np.inf)
    return np.prod(cs[:-1] ** weights[:-1, None], axis=0) * ms[-1] ** weights[-1]


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 48, 64)])
def test_matches_reference(digits: torch.Tensor, shape: tuple[int, int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    c, h, w = shape
    base = torch.nn.functional.interpolate(digits[:6].float(), size=(h, w), mode="bilinear").expand(-1, c, -1, -1)
    noisy = (base + 25 * torch.randn(base.shape, generator=g)).clamp(0, 255).round()
    pairs = [(base[:3], base[3:]), (base, noisy), (torch.randint(0, 256, (3, c, h, w), generator=g).float(),) * 2]
    for x, y in pairs:
        ours = M.ms_ssim(x.to(torch.uint8), y.to(torch.uint8)).numpy()
        theirs = reference_msssim(x.permute(0, 2, 3, 1).numpy(), y.permute(0, 2, 3, 1).numpy())
        # The official squares float32 images (inexact below the first scale); we filter in float64.
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-6)


def test_identical_is_one_and_different_is_lower(digits: torch.Tensor) -> None:
    x = digits[:8]
    np.testing.assert_allclose(M.ms_ssim(x, x).numpy(), 1.0, rtol=1e-12)
    assert float(M.ms_ssim(x[:4], x[4:]).mean()) < 0.9


def test_pairs_stream_and_small_images(digits: torch.Tensor) -> None:
    x = digits[:20]
    direct = float(M.ms_ssim(x[0::2], x[1::2]).mean())
    streamed = M.ms_ssim_pairs([x[:7], x[7:8], x[8:20]])  # pairs straddle batches
    assert streamed == pytest.approx(direct, rel=1e-12)
    assert M.ms_ssim_pairs([x], max_pairs=3) == pytest.approx(float(M.ms_ssim(x[0:6:2], x[1:6:2]).mean()))
    with pytest.raises(M.MSSSIMError, match="at least 16"):
        M.ms_ssim(x[:2, :, :8, :8], x[2:4, :, :8, :8])
    odd = torch.nn.functional.pad(x[:4], (0, 8, 0, 8))  # 40x40: 40, 20, 10, 5 -> the 5x5 level is cropped to 4
    assert torch.isfinite(M.ms_ssim(odd[:2], odd[2:])).all()
