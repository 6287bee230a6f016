"""Class-conditional models in the zoo: the data set's classes in metadata and on the card, and the
per-class sample grid (one row per class, the same latents in every row)."""

from __future__ import annotations

import math
from typing import Any

import torch


def dataset_classes(spec: Any) -> dict[str, Any]:
    """The ``classes`` entry of metadata.json's ``dataset`` for a conditional spec ({} otherwise)."""
    from .model import class_names

    names = class_names(spec)
    return {"classes": names} if names else {}


@torch.no_grad()
def class_grid_images(G: Any, per_class: int, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """uint8 images class by class: ``per_class`` of each class in label order, the latents of
    ``G.latents(per_class, seed)`` repeated for every class (so rows differ only by the label)."""
    z = G.latents(per_class, seed).repeat(G.label_size, 1)                     # [L*k, Z]
    labels = torch.arange(G.label_size).repeat_interleave(per_class)           # [L*k]
    return G.generate(z, batch_size=batch_size, labels=labels)


def per_class(n: int, label_size: int) -> int:
    """Images per class (columns) of a per-class grid of about ``n`` images."""
    return max(1, math.ceil(n / label_size))


def card_lines(meta: dict[str, Any], ref: str) -> list[str]:
    """The card's section on a conditional model's classes ([] for an unconditional one)."""
    names = (meta.get("dataset") or {}).get("classes")
    if not names:
        return []
    example = names[min(3, len(names) - 1)]
    listing = ", ".join(f"{i}: `{n}`" for i, n in enumerate(names))
    return [
        "## Classes",
        "",
        f"Class-conditional ({len(names)} classes; labels enter G concatenated to the latent, the official "
        "ProGAN conditioning). The sample grid shows one row per class, in this order: " + listing + ".",
        "",
        "```python",
        f'images = G.sample(16, labels="{example}")   # a class by name or index; or one label per image',
        "```",
        "",
        "```bash",
        f"progan-zoo generate {ref} --class {example} --n 16 --out class.png",
        f"progan-zoo generate {ref} --per-class 8 --out classes.png   # one row per class",
        "```",
        "",
    ]
