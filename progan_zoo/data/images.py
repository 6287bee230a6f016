"""Image helpers shared by the built-in datasets and the cache builder: levels, crops, colour.

Every resolution level is made the way the official ``dataset_tool.py`` makes its TFRecords:
each level is the 2x2 box average of the previous level *in float*, and only the stored copy is
rounded to uint8 (``np.rint``), so rounding errors do not pile up from level to level.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from progan_zoo.errors import UserError


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def quantize(x: np.ndarray) -> np.ndarray:
    """float [0, 255] -> uint8, rounded to nearest."""
    return np.rint(x).clip(0, 255).astype(np.uint8)


def box_downsample(x: np.ndarray) -> np.ndarray:
    """2x2 box average of float images [..., H, W] (H and W even)."""
    x = x.astype(np.float32, copy=False)
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) * 0.25


def iter_levels(images: np.ndarray, lowest: int = 4) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (resolution, uint8 [N,C,r,r]) from the images' own size down to ``lowest``."""
    x = images.astype(np.float32)
    res = x.shape[-1]
    while True:
        yield res, quantize(x)
        if res <= lowest:
            break
        x, res = box_downsample(x), res // 2


def downsample_to(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [N,C,R,R] -> uint8 [N,C,r,r] for a power-of-two r <= R, by repeated 2x2 box averages."""
    if images.shape[-1] == resolution:
        return images
    for res, level in iter_levels(images, lowest=resolution):
        if res == resolution:
            return level
    raise ValueError(f"cannot downsample {images.shape[-1]} px images to {resolution} px")


def match_channels(images: np.ndarray, channels: int, where: str) -> np.ndarray:
    """uint8 [N,C,H,W] with C in {1, 3} -> ``channels`` channels (grey repeated, or ITU-R 601 luma)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if have == 3 and channels == 1:
        luma = images.astype(np.float32).transpose(0, 2, 3, 1) @ np.array([0.299, 0.587, 0.114], np.float32)
        return quantize(luma[:, None])
    raise UserError(f"{where}: the data has {have} channel(s) and {channels} were asked for "
                    "(hint: use 1 (grey) or 3 (RGB) channels)")
