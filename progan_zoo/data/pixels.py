"""Generator output as pixels: the one home of ``to_uint8`` and of tiling images into one picture.

The official code maps G's nominal range [-1, 1] to [0, 255] with ``adjust_dynamic_range``, then
rounds (``rint``) and clips; G's output is not clamped, so the clip matters. Sample grids, saved
images, metrics and the zoo all go through these two functions.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] in nominal [-1, 1] -> uint8 [N, C, H, W]: x * 127.5 + 127.5, rounded, clipped."""
    x = images.detach().float() * 127.5 + 127.5
    return x.round_().clamp_(0, 255).to(torch.uint8)


def tile(images: torch.Tensor, cols: int | None = None, pad: int = 0, border: bool = False) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 picture [H', W', C], row-major, ``pad`` black pixels between
    tiles (and around them with ``border``); ``cols`` defaults to a square-ish layout."""
    n, c, h, w = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    edge = pad if border else 0
    height = rows * (h + pad) - pad + 2 * edge if rows else 0
    canvas = np.zeros((height, cols * (w + pad) - pad + 2 * edge, c), dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = edge + r * (h + pad), edge + q * (w + pad)
        canvas[top: top + h, left: left + w] = arr[i]
    return canvas
