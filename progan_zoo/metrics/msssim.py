"""MS-SSIM between random pairs of generated images: the paper's variation measure (Sec. 5, Table 1).

Follows the official ``metrics/ms_ssim.py`` (itself TensorFlow's port of Wang et al. 2003): 11x11
Gaussian window with sigma 1.5, k1 = 0.01, k2 = 0.03, dynamic range 255, five scales weighted
0.0448, 0.2856, 0.3001, 0.2363, 0.1333, 'valid' filtering, 2x2 average downsampling, SSIM and CS averaged
over pixels and channels, negative values clipped to 0, the product taken per pair and averaged over pairs.
Like the official code, at scales smaller than the window the window shrinks to the image size and sigma
with it (size * 1.5 / 11). Our choices where the official code has none: sides need >= 16 pixels (five
scales), and an odd side is cropped by one pixel before 2x2 averaging (the official code would fail there).
Lower mean MS-SSIM = more varied samples; the paper compares it with the same measure on training data.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F

from progan_zoo.errors import UserError

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003; they do not sum to 1 (official too)
FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MAX_VAL = 255.0
DEFAULT_PAIRS = 10000  # the paper's number of pairs


class MSSSIMError(UserError):
    """Bad input to MS-SSIM."""


def _gauss_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # MATLAB fspecial('gaussian'): centred grid, half-integer offsets for even sizes; separable.
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    k = g.numel()
    y = F.conv2d(x.reshape(n * c, 1, h, w), g.view(1, 1, 1, k))
    y = F.conv2d(y, g.view(1, 1, k, 1))
    return y.reshape(n, c, y.shape[-2], y.shape[-1])


def _ssim_cs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and contrast-structure term at one scale (official _SSIMForMultiScale)."""
    h, w = a.shape[-2:]
    size = min(FILTER_SIZE, h, w)
    sigma = size * FILTER_SIGMA / FILTER_SIZE
    g = _gauss_1d(size, sigma, a.dtype, a.device)
    mu1, mu2 = _filter_valid(a, g), _filter_valid(b, g)
    s11 = _filter_valid(a * a, g) - mu1 * mu1
    s22 = _filter_valid(b * b, g) - mu2 * mu2
    s12 = _filter_valid(a * b, g) - mu1 * mu2
    c1 = (K1 * MAX_VAL) ** 2
    c2 = (K2 * MAX_VAL) ** 2
    v1 = 2.0 * s12 + c2
    v2 = s11 + s22 + c2
    ssim = ((2.0 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2)
    return ssim.mean(dim=(1, 2, 3)), (v1 / v2).mean(dim=(1, 2, 3))


def _downsample(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    x = x[..., : h - h % 2, : w - w % 2]  # ours: odd sides lose their last row/column
    return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) * 0.25


def ssim(img1: torch.Tensor, img2: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Single-scale SSIM of each pair: [N, C, H, W] in [0, 255] -> [N], differentiable.

    The first scale of ``ms_ssim`` (Wang et al. 2004's Gaussian-window SSIM, 'valid' filtering; the window
    shrinks for images under 11 pixels a side). Projection scores and optimises reconstructions with it.
    """
    if img1.shape != img2.shape or img1.dim() != 4:
        raise MSSSIMError(f"SSIM needs two [N, C, H, W] batches of the same shape, got {tuple(img1.shape)} and {tuple(img2.shape)}")
    return _ssim_cs(img1.to(dtype), img2.to(dtype))[0]


def ms_ssim(img1: torch.Tensor, img2: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """MS-SSIM of each pair (img1[i], img2[i]): [N, C, H, W] images in [0, 255] (uint8 or float) -> [N].

    Computed in float64 by default (the official code filters in float64 too).
    """
    if img1.shape != img2.shape or img1.dim() != 4:
        raise MSSSIMError(f"MS-SSIM needs two [N, C, H, W] batches of the same shape, got {tuple(img1.shape)} and {tuple(img2.shape)}")
    if min(img1.shape[-2:]) < 2 ** (len(WEIGHTS) - 1):
        raise MSSSIMError(f"MS-SSIM needs images of at least {2 ** (len(WEIGHTS) - 1)} pixels a side (five scales), got {tuple(img1.shape[-2:])}")
    a, b = img1.to(dtype), img2.to(dtype)
    mssim, mcs = [], []
    for level in range(len(WEIGHTS)):
        s, c = _ssim_cs(a, b)
        mssim.append(s)
        mcs.append(c)
        if level + 1 < len(WEIGHTS):
            a, b = _downsample(a), _downsample(b)
    w = torch.tensor(WEIGHTS, dtype=dtype, device=a.device)
    ms = torch.stack(mssim).clamp_min(0)  # clip to zero, otherwise NaNs (official)
    cs = torch.stack(mcs).clamp_min(0)
    return torch.prod(cs[:-1] ** w[:-1, None], dim=0) * ms[-1] ** w[-1]


@torch.no_grad()
def ms_ssim_pairs(batches: Iterable[torch.Tensor], device: torch.device | str | None = None, max_pairs: int | None = None) -> float:
    """Mean MS-SSIM over consecutive pairs (0, 1), (2, 3), ... of a stream of image batches.

    The official ``metrics/ms_ssim.py`` API scores ``images[0::2]`` against ``images[1::2]`` of every (even)
    minibatch, i.e. the same consecutive pairs; here pairs may also straddle batches (an odd batch leaves
    its last image for the next one). A pair is two positions of the stream, so an image is never paired
    with itself unless the stream repeats it back to back.
    """
    from tqdm.auto import tqdm

    total, count = 0.0, 0
    carry: torch.Tensor | None = None
    for batch in tqdm(batches, desc="MS-SSIM", unit="batch", leave=False, disable=None):
        if device is not None:
            batch = batch.to(device)
        if carry is not None:
            batch = torch.cat([carry, batch])
            carry = None
        if batch.shape[0] % 2:
            carry, batch = batch[-1:], batch[:-1]
        if max_pairs is not None:
            batch = batch[: 2 * (max_pairs - count)]
        if batch.shape[0]:
            scores = ms_ssim(batch[0::2], batch[1::2])
            total += float(scores.sum())
            count += scores.shape[0]
        if max_pairs is not None and count >= max_pairs:
            break
    if count == 0:
        raise MSSSIMError("MS-SSIM needs at least one pair of images")
    return total / count


def ms_ssim_generator(
    generator: Any, num_pairs: int = DEFAULT_PAIRS, seed: int = 0, batch_size: int = 64, device: torch.device | str | None = None
) -> float:
    """Mean MS-SSIM of ``num_pairs`` random pairs of generated images (latents seeded with ``seed``)."""
    from progan_zoo.metrics.context import MetricContext

    ctx = MetricContext(generator=generator, num=2 * num_pairs, seed=seed, device=device, batch_size=batch_size)
    return ms_ssim_pairs(ctx.fake_batches(), device=ctx.torch_device)


def ms_ssim_images(images: torch.Tensor, num_pairs: int | None = None, seed: int = 0, batch_size: int = 64) -> float:
    """Mean MS-SSIM of pairs of distinct images from a uint8 set (e.g. the training data, for reference).

    As the official evaluation's real pass: consecutive images (0, 1), (2, 3), ... of the set in a seeded
    random order, cycled when more pairs are asked for than the set holds; two neighbours in that stream are
    never the same image (a set needs at least two images). Default: ``N // 2`` pairs.
    """
    from progan_zoo.metrics.reals import RealStream

    n = images.shape[0]
    if n < 2:
        raise MSSSIMError(f"MS-SSIM of an image set needs at least two images, got {n}")
    pairs = n // 2 if num_pairs is None else int(num_pairs)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).numpy()
    stream = RealStream(images, 2 * pairs, order=order)
    return ms_ssim_pairs(stream.iter_batches(batch_size - batch_size % 2 or 2))
