"""Real images as the official evaluation feeds them to the metrics (``util_scripts.evaluate_metrics``).

The official code reads reals from its training dataset with ``repeat=True, shuffle_mb=0``: the stored
order, cycled from the start when a metric asks for more images than the set has (FID-50k of the 30,000
CelebA-HQ images), each minibatch mirrored at random (``misc.apply_mirror_augment``: each image with
probability 1/2) when the run trained with mirror augmentation. Every metric of one call starts at the
beginning of that stream; SWD's second real pass (the real-vs-real floor) continues it.

``RealStream`` is that stream as a map-style dataset: position ``i`` holds image ``order[i % N]``,
flipped left-right when its seeded coin says so. ``order`` stands in for the official store's order
(``dataset_tool.py`` writes most sets in a shuffled order; our caches keep file order).
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from progan_zoo.errors import UserError


def _length(images: Any) -> int:
    return int(images.shape[0]) if isinstance(images, (np.ndarray, torch.Tensor)) else len(images)


def is_indexable(source: Any) -> bool:
    """A tensor, an array or a map-style dataset with a length (as opposed to an iterable of batches)."""
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return True
    return (isinstance(source, torch.utils.data.Dataset) and not isinstance(source, torch.utils.data.IterableDataset)
            and hasattr(source, "__len__"))


class RealStream(torch.utils.data.Dataset):
    """``length`` real uint8 images [C, H, W]: ``images[order[i % N]]``, mirrored where ``flips[i]``.

    ``images``: uint8 [N, C, H, W] tensor or array (a memory-mapped cache level is read lazily), or a map-style
    dataset of [C, H, W] tensors. ``order``: a permutation of range(N) (default: the stored order).
    ``mirror``: flip each position with probability 1/2, seeded by ``seed`` (the official flips are unseeded).
    """

    def __init__(self, images: Any, length: int, *, order: Sequence[int] | None = None, mirror: bool = False,
                 seed: int = 0) -> None:
        n = _length(images)
        if n == 0:
            raise UserError("the real data has no images")
        self.images, self.length, self.num_source = images, int(length), n
        self.order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
        if self.order.shape != (n,):
            raise ValueError(f"order must be a permutation of {n} indices, got shape {self.order.shape}")
        self.mirror = bool(mirror)
        self.flips = (np.random.default_rng([int(seed), 3]).random(self.length) < 0.5) if mirror \
            else np.zeros(self.length, dtype=bool)

    @property
    def cycles(self) -> float:
        """How many times the stream runs through the source (> 1: images repeat, as in the official code)."""
        return self.length / self.num_source

    def head(self, num: int) -> "RealStream":
        """The first ``num`` positions of this stream (same images, same flips)."""
        if not 0 < num <= self.length:
            raise ValueError(f"head({num}) of a stream of {self.length} images")
        out = copy.copy(self)
        out.length, out.flips = int(num), self.flips[:num]
        return out

    def source_indices(self, positions: np.ndarray) -> np.ndarray:
        return self.order[np.asarray(positions, dtype=np.int64) % self.num_source]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return self.__getitems__([i])[0]

    def __getitems__(self, positions: Sequence[int]) -> list[torch.Tensor]:
        return list(self.batch(np.asarray(positions, dtype=np.int64)))

    def batch(self, positions: np.ndarray) -> torch.Tensor:
        """uint8 [len(positions), C, H, W] for stream positions (one fancy-indexed read for arrays)."""
        idx = self.source_indices(positions)
        if isinstance(self.images, np.ndarray):
            # A memmap reads fastest in ascending order; put the rows back afterwards.
            sort = np.argsort(idx, kind="stable")
            x = np.empty((len(idx),) + self.images.shape[1:], self.images.dtype)
            x[sort] = self.images[idx[sort]]
            x = torch.from_numpy(x)
        elif isinstance(self.images, torch.Tensor):
            x = self.images[torch.from_numpy(idx)]
        else:
            items = [self.images[int(j)] for j in idx]
            x = torch.stack([it[0] if isinstance(it, (tuple, list)) else it for it in items])
        flip = torch.from_numpy(self.flips[np.asarray(positions, dtype=np.int64)])
        if bool(flip.any()):
            x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)   # [NCHW]
        return x

    def iter_batches(self, batch_size: int, num: int | None = None) -> Iterator[torch.Tensor]:
        """uint8 NCHW batches of the first ``num`` positions (default: all)."""
        end = self.length if num is None else min(int(num), self.length)
        for start in range(0, end, batch_size):
            yield self.batch(np.arange(start, min(start + batch_size, end)))
