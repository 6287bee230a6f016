"""Class-conditional models in the zoo: the classes on the card, and the
per-class sample grid (one row per class, the same latents in every row)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


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


def card_lines(meta: Any, ref: str) -> list[str]:
    """The card's section on a conditional model's classes ([] for an unconditional one); ``meta`` is
    the model's ``ModelMetadata`` record."""
    names = (meta.dataset or {}).get("classes")
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


def nearest_neighbour_classes(images: torch.Tensor, reals: torch.Tensor, real_labels: torch.Tensor,
                              batch: int = 256) -> torch.Tensor:
    """Class of each image's nearest real image (L2 in pixel space): an independent classifier, sharing
    nothing with the GAN (it held 94% of 1,000 held-out bundled digits right against the other 4,000).
    ``images`` and ``reals`` are uint8 [N, C, H, W] of the same size."""
    ref = reals.reshape(len(reals), -1).float() / 255.0
    out = []
    for chunk in images.split(batch):
        d = torch.cdist(chunk.reshape(len(chunk), -1).float() / 255.0, ref)     # [n, N]
        out.append(real_labels[d.argmin(dim=1)])
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


@torch.no_grad()
def class_agreement(G: Any, reals: torch.Tensor, real_labels: torch.Tensor, per_class: int = 100,
                    seed: int = 0) -> dict[str, Any]:
    """How often the nearest real image's class is the class asked for: ``per_class`` images of every
    class from ``G`` (latents of ``seed``), overall and per class."""
    images = class_grid_images(G, per_class, seed=seed)
    asked = torch.arange(G.label_size).repeat_interleave(per_class)
    got = nearest_neighbour_classes(images, reals, real_labels)
    hits = (got == asked).float()
    names = G.class_names
    return {"agreement": float(hits.mean()), "per_class": {names[c]: float(hits[asked == c].mean())
                                                           for c in range(G.label_size)},
            "images_per_class": per_class, "seed": seed, "classifier": "1-NN, pixel L2, labelled reals"}


class OneClass(torch.nn.Module):
    """A conditional model fixed to one class: ``G(z)`` images of that class, for any metric that scores
    a generator (``metrics.evaluate``) against the reals of that class."""

    def __init__(self, G: Any, cls: int) -> None:
        super().__init__()
        self.G, self.cls = G, int(cls)
        self.z_dim, self.resolution, self.image_channels = G.z_dim, G.resolution, G.image_channels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z, labels=torch.full((len(z),), self.cls, dtype=torch.long))


def evaluate_per_class(G: Any, reals: torch.Tensor, real_labels: torch.Tensor, metrics: list[str], num: int,
                       seed: int = 0) -> dict[str, Any]:
    """``metrics.evaluate`` once per class: ``num`` images of the class against that class's reals
    (cycled when fewer; G's images are nearest-upsampled to the reals' size if smaller).
    Returns {class name: results}."""
    from progan_zoo.metrics.evaluate import evaluate

    out = {}
    for c, name in enumerate(G.class_names):
        mine = reals[real_labels == c]
        out[name] = evaluate(OneClass(G, c), metrics, num, real=mine, seed=seed, resolution=reals.shape[-1])
    return out


def print_per_class(G: Any, data: str, resolution: int, metrics: list[str], counts: dict[str, int], seed: int,
                    crop: str | None = None) -> dict[str, Any]:
    """``progan-zoo evaluate --per-class``: every metric per class, and the 1-NN class agreement; prints
    one line per class and returns {"classes": {name: results}, "class_agreement": ...}."""
    from progan_zoo.data import open_dataset
    from progan_zoo.errors import UserError

    data_set = open_dataset(data, resolution, G.image_channels, progress=False, crop=crop, labels=True)
    if data_set.labels is None or data_set.labels.label_size != G.label_size:
        raise UserError(f"{data}: needs {G.label_size} class labels to score classes (hint: --data a labelled "
                        "cache, see progan-zoo dataset --labels)")
    reals = torch.from_numpy(np.array(data_set.level(resolution)))
    labels = torch.from_numpy(np.array(data_set.labels.indices))
    num = max(counts.values())
    per = evaluate_per_class(G, reals, labels, metrics, num, seed=seed)
    for name, res in per.items():
        nums = [f"{k} {v:.3f}" for m in metrics for k, v in (res.get(m) or {}).items() if isinstance(v, float)]
        print(f"class {name}: " + (", ".join(nums) or "no values"))
    own = torch.from_numpy(np.array(data_set.level(G.resolution)))   # the classifier works at G's size
    agree = class_agreement(G, own, labels, per_class=max(1, num // G.label_size), seed=seed)
    print(f"class agreement (1-NN on the labelled reals): {agree['agreement']:.3f} overall; "
          + ", ".join(f"{k} {v:.2f}" for k, v in agree["per_class"].items()))
    return {"classes": per, "class_agreement": agree}
