"""Images out of a generator: [-1, 1] -> uint8, grids, PNG and GIF files, latent interpolation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from progan_zoo.data.pixels import tile
from progan_zoo.errors import UsageError
from progan_zoo.fsutil import no_half_made_dirs, replaced_atomically

if TYPE_CHECKING:
    import PIL.Image


def grid(images: torch.Tensor, cols: int | None = None, pad: int = 0) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 picture [rows*H, cols*W, C] (C is 1 or 3), row-major."""
    return tile(images, cols=cols, pad=pad)


def to_pil(picture: np.ndarray) -> "PIL.Image.Image":
    """uint8 [H, W, C] with C in (1, 3, 4) -> a PIL image (greyscale stays greyscale)."""
    from PIL import Image

    if picture.shape[-1] == 1:
        return Image.fromarray(picture[..., 0], mode="L")
    if picture.shape[-1] not in (3, 4):
        # More channels than a picture holds: show the first three.
        picture = picture[..., :3]
    return Image.fromarray(np.ascontiguousarray(picture))


def image_format(path: Path, animated: bool = False) -> str:
    """The PIL format that ``path``'s extension names (one that can hold frames when ``animated``);
    a name PIL cannot write is the user's to fix, before anything is computed or written."""
    from PIL import Image

    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in (Image.SAVE_ALL if animated else Image.SAVE):
        example = "walk.gif" if animated else "grid.png"
        raise UsageError(f"{path}: cannot tell which picture format to write from its name (hint: end it in "
                         f"{Path(example).suffix}, e.g. --out {example})")
    return fmt


def save_grid(images: torch.Tensor, path: str | Path, cols: int | None = None) -> Path:
    """Write uint8 [N, C, H, W] as one picture grid (the format from the extension; whole or not at all)."""
    p = Path(path)
    fmt = image_format(p)
    with no_half_made_dirs(p.parent), replaced_atomically(p) as tmp:
        to_pil(grid(images, cols)).save(tmp, format=fmt)
    return p


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 12.0, upscale: int = 1) -> Path:
    """Write uint8 [H, W, C] frames as a looping GIF (nearest-neighbour ``upscale`` for tiny models)."""
    from PIL import Image

    p = Path(path)
    fmt = image_format(p, animated=True)
    pics = []
    for f in frames:
        im = to_pil(f)
        if upscale > 1:
            im = im.resize((im.width * upscale, im.height * upscale), Image.NEAREST)
        pics.append(im)
    with no_half_made_dirs(p.parent), replaced_atomically(p) as tmp:
        pics[0].save(tmp, format=fmt, save_all=True, append_images=pics[1:], duration=max(1, round(1000 / fps)),
                     loop=0, optimize=False)
    return p


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the great circle between latents a and b (per row).

    Gaussian latents concentrate near a sphere of radius sqrt(z_dim); lerp cuts through its inside,
    where G has seen few latents. G pixel-normalizes z first (paper section 4.2), so only the
    direction matters and slerp keeps every frame on the sphere.
    """
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    dot = (an * bn).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(dot)
    so = torch.sin(omega)
    near = so.abs() < eps
    wa = torch.where(near, torch.full_like(so, 1.0 - t), torch.sin((1.0 - t) * omega) / so.where(~near, torch.ones_like(so)))
    wb = torch.where(near, torch.full_like(so, t), torch.sin(t * omega) / so.where(~near, torch.ones_like(so)))
    return wa * a + wb * b


def latent_walk(keys: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """[K, Z] key latents -> [K * steps, Z]: a closed loop through every key (the last returns to the first)."""
    if method not in ("slerp", "lerp"):
        raise ValueError(f"unknown interpolation {method!r}: use slerp or lerp")
    f = slerp if method == "slerp" else lerp
    out = []
    k = keys.shape[0]
    for i in range(k):
        a, b = keys[i: i + 1], keys[(i + 1) % k: (i + 1) % k + 1]
        for s in range(steps):
            out.append(f(a, b, s / steps))
    return torch.cat(out, 0)
