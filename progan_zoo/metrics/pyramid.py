"""The Laplacian pyramid of SWD, as the official ProGAN code builds it (``metrics/sliced_wasserstein.py``).

``pyr_down`` and ``pyr_up`` are the official cv2.pyrDown / cv2.pyrUp with scipy's "mirror" borders:
a 5x5 binomial filter (the outer product of 1 4 6 4 1 with itself, / 256), then every second pixel
kept, or zeros inserted and the filter applied with 4x the gain. ``laplacian_pyramid`` gives the
band-pass levels from full size down, the last level the low-pass residual. SWD draws its 7x7
descriptors from these levels (descriptors.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # / 16: the official 5x5 filter is the outer product of this with itself


def _separable_blur(x: torch.Tensor, gain: float, stride: int) -> torch.Tensor:
    """5x5 binomial filter (times ``gain`` per axis) with mirror borders, keeping every ``stride``-th pixel.

    torch's 'reflect' padding is scipy's 'mirror' (d c b | a b c d). Five shifted slices per axis: for a
    5-tap filter this is cheaper than a convolution call on tiny images.
    """
    taps = [t * gain / 16.0 for t in _BINOMIAL]
    h, w = x.shape[-2:]
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    y = F.pad(x, (2, 2, 2, 2), mode="reflect")  # [N, C, H+4, W+4]
    rows = y[..., 0 : stride * (wo - 1) + 1 : stride] * taps[0]
    for t in range(1, 5):
        rows.add_(y[..., t : t + stride * (wo - 1) + 1 : stride], alpha=taps[t])
    out = rows[..., 0 : stride * (ho - 1) + 1 : stride, :] * taps[0]
    for t in range(1, 5):
        out.add_(rows[..., t : t + stride * (ho - 1) + 1 : stride, :], alpha=taps[t])
    return out


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, then keep every second row and column (official pyr_down)."""
    return _separable_blur(x, gain=1.0, stride=2)


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels, then blur with 4x the filter (official pyr_up)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    # 4 * f2d == (2 * f1d) x (2 * f1d); the mirror border is taken on the zero-filled image, as officially.
    return _separable_blur(up, gain=2.0, stride=1)


def laplacian_pyramid(x: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels from full size down; the last level is the low-pass residual (official order)."""
    levels = [x]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1])
    return levels
