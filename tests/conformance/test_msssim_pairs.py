"""MS-SSIM pairing against the official ``metrics/ms_ssim.py`` ``API`` (tkarras/progressive_growing_of_gans).

The official API is built with ``num_images`` (config.py: 20000, the paper's 10,000 pairs) and keeps
``num_pairs = num_images // 2``; ``feed`` scores ``msssim(images[0::2], images[1::2])`` of each even
minibatch (consecutive images, never an image with itself) and adds ``score * (n // 2)``; ``end`` returns
``sum / num_pairs``. The per-pair formula is checked against the official code in tests/metrics/test_msssim.py;
here the pairing and the averaging are.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from progan_zoo.metrics import msssim as M
from progan_zoo.metrics.registry import MetricContext, calc_metric


def official_api(minibatches: list[torch.Tensor], num_images: int) -> float:
    """begin/feed/end of the official API, with our ``ms_ssim`` as its ``msssim``."""
    assert num_images % 2 == 0
    num_pairs = num_images // 2
    total = 0.0
    for images in minibatches:
        assert images.shape[0] % 2 == 0
        score = float(M.ms_ssim(images[0::2], images[1::2]).mean())   # np.mean over the minibatch's pairs
        total += score * (images.shape[0] // 2)
    return total / num_pairs


def noise(n: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def test_pairs_and_average_are_the_official_api() -> None:
    x = noise(24)
    minibatches = [x[:8], x[8:16], x[16:24]]
    assert M.ms_ssim_pairs(minibatches) == pytest.approx(official_api(minibatches, 24), rel=1e-12)
    # Batches of odd sizes pair the same consecutive images.
    assert M.ms_ssim_pairs([x[:5], x[5:12], x[12:24]]) == pytest.approx(official_api(minibatches, 24), rel=1e-12)


class Repeat(torch.nn.Module):
    """A generator whose image depends only on the latent (so equal latents would give equal images)."""

    z_dim, resolution = 4, 32

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        w = torch.randn(4, 3 * 32 * 32, generator=g)
        return torch.tanh(z @ w).view(-1, 3, 32, 32)


def test_generated_pairs_are_consecutive_distinct_latents() -> None:
    rec = calc_metric("msssim", MetricContext(generator=Repeat(), num=20, seed=5, batch_size=6))
    assert rec["settings"]["pairs"] == 10                           # num_images // 2, as the official API
    ctx = MetricContext(generator=Repeat(), num=20, seed=6, batch_size=6)
    images = torch.cat(list(ctx.fake_batches()))                    # the latents msssim draws (seed + 1)
    assert rec["results"]["msssim"] == pytest.approx(official_api([images], 20), rel=1e-12)
    assert all(not torch.equal(images[2 * i], images[2 * i + 1]) for i in range(10))


def test_image_set_pairs_never_pair_an_image_with_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = M.ms_ssim

    def spy(a: torch.Tensor, b: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        seen.append((a.clone(), b.clone()))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(M, "ms_ssim", spy)
    x = noise(3, seed=1)                                            # odd, and far fewer than the pairs asked for
    value = M.ms_ssim_images(x, num_pairs=25, seed=0, batch_size=8)
    a = torch.cat([p[0] for p in seen])
    b = torch.cat([p[1] for p in seen])
    assert a.shape[0] == 25
    assert all(not torch.equal(a[i], b[i]) for i in range(25))
    # Pairs are consecutive images of one seeded order of the set, cycled (the official reals pass).
    order = torch.randperm(3, generator=torch.Generator().manual_seed(0))
    stream = x[order[torch.arange(50) % 3]]
    assert torch.equal(a, stream[0::2]) and torch.equal(b, stream[1::2])
    assert value == pytest.approx(official_api([stream], 50), rel=1e-12)


def test_image_set_needs_two_images() -> None:
    with pytest.raises(M.MSSSIMError, match="at least two images"):
        M.ms_ssim_images(noise(1))


def test_pairs_of_distinct_noise_are_far_from_identical() -> None:
    # Sanity of the measure the pairing feeds: an image with itself scores 1; distinct noise far less.
    x = noise(4, seed=2)
    assert float(M.ms_ssim(x[:1], x[:1])) == pytest.approx(1.0)
    assert M.ms_ssim_images(x, num_pairs=4) < 0.5
    assert np.isfinite(M.ms_ssim_images(x))
