"""Images in batches, from one tensor or from any iterable of batches: what every metric reads."""

from __future__ import annotations

from typing import Iterable, Iterator

import torch

ImageSource = torch.Tensor | Iterable[torch.Tensor]


def iter_batches(source: ImageSource, batch_size: int = 64, limit: int | None = None) -> Iterator[torch.Tensor]:
    """Yield uint8 NCHW batches from a tensor [N, C, H, W] or an iterable of batches, up to ``limit`` images."""
    if isinstance(source, torch.Tensor):
        end = source.shape[0] if limit is None else min(limit, source.shape[0])
        for i in range(0, end, batch_size):
            yield source[i : min(i + batch_size, end)]
        return
    seen = 0
    for batch in source:
        if isinstance(batch, (tuple, list)):  # (images, labels) from a DataLoader
            batch = batch[0]
        if limit is not None and seen + batch.shape[0] > limit:
            batch = batch[: limit - seen]
        if batch.shape[0]:
            yield batch
        seen += batch.shape[0]
        if limit is not None and seen >= limit:
            return
