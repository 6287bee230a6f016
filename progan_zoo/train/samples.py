"""Sample grids: PNG pictures of generated images, for people to look at."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in nominal [-1, 1] -> uint8 [N, H, W, C] (clipped)."""
    x = (images.detach().float().cpu() + 1.0) * 127.5
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: torch.Tensor, size: int | None = None, cols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images into one uint8 picture [H, W, C]; ``size`` upscales each (nearest) so every stage's grid is as large."""
    if size is not None and images.shape[-1] != size:
        images = F.interpolate(images.float(), size=(size, size), mode="nearest")
    tiles = to_uint8(images)
    n, h, w, c = tiles.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.uint8)
    for i, tile in enumerate(tiles):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = tile
    return grid


def save_png(picture: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 [H, W, C] picture (C = 1 or 3) as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
