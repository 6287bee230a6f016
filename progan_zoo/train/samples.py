"""Sample grids: PNG pictures of generated images, for people to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from progan_zoo.data.pixels import tile, to_uint8
from progan_zoo.fsutil import replaced_atomically


def make_grid(images: torch.Tensor, size: int | None = None, cols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images into one uint8 picture [H, W, C]; ``size`` upscales each (nearest) so every stage's grid is as large."""
    if size is not None and images.shape[-1] != size:
        images = F.interpolate(images.float(), size=(size, size), mode="nearest")
    return tile(to_uint8(images), cols=cols, pad=pad, border=True)


def save_png(picture: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 [H, W, C] picture (C = 1 or 3) as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    img = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)
    with replaced_atomically(path) as tmp:
        img.save(tmp, format="PNG")
    return path
