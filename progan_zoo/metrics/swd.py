"""Multi-scale sliced Wasserstein distance (SWD), computed the way the official ProGAN code does it.

Karras et al. 2018, Sec. 5 and App. D; official ``metrics/sliced_wasserstein.py``. Per image: a Laplacian
pyramid (5x5 binomial filter, mirror borders) from the full resolution down to 16x16; from every level 128
random 7x7 neighbourhoods (centres >= 3 px from the border), each a 3*7*7 = 147-d descriptor. Per level and
per set: descriptors normalized per colour channel (mean/std over the whole set). Distance per level: for 4
repeats of 128 random unit directions, project both sets, sort, mean absolute difference; mean over the
repeats, times 1e3. Reported: every level and their average (``swd_<res>``, ``swd_avg``).

What is ours: vectorized torch (CPU or CUDA), streaming (images arrive in batches, only the 128
descriptors/image/level are kept), and our own random streams (``torch.Generator``): patch positions
depend only on (seed, set, image index), directions only on the seed, so results do not depend on the batch
size or the device. The 1-D Wasserstein distances are exact, as officially: ``w1`` is that engine (sorted
projections, or the optional C kernel for levels with repeated patches). Images arrive through
``batches.iter_batches``. This file is the metric (levels, directions, the ``SWD`` object, one-shot
helpers); the pyramid is ``pyramid.py`` and the descriptors of one image set ``descriptors.py``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch

from .batches import ImageSource, iter_batches
from .descriptors import DESCRIPTOR_DIM, DescriptorBank, stream_seed
from .w1 import Method, SWDError, _intra_op_threads, _level_distance, _resolve_method

DIR_REPEATS = 4  # official dir_repeats
DIRS_PER_REPEAT = 128  # official dirs_per_repeat
MIN_RESOLUTION = 16  # the pyramid stops at 16x16 (official: `while res >= 16`)

# Random streams: one per role, so that real/fake patches and directions never share random numbers.
STREAM_REAL, STREAM_FAKE, STREAM_DIRECTIONS = 0, 1, 2

# ----------------------------------------------------------------------------------------------------------
# Inputs


def swd_resolutions(resolution: int) -> list[int]:
    """Pyramid levels for images of side ``resolution``: resolution, resolution/2, ... while >= 16."""
    if resolution < MIN_RESOLUTION:
        raise SWDError(f"SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION}, got {resolution}")
    levels = []
    res = resolution
    while res >= MIN_RESOLUTION:
        levels.append(res)
        res //= 2
    if resolution % (1 << (len(levels) - 1)):
        # The official pyr_up(pyr_down(x)) only has x's shape when every level is even.
        raise SWDError(
            f"SWD resolution {resolution} must be divisible by {1 << (len(levels) - 1)} "
            f"(levels {levels} each halve the image)"
        )
    return levels


# ----------------------------------------------------------------------------------------------------------
# Random directions (the W1 engine that uses them is w1.py)


def random_directions(seed: int, num_levels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Unit directions [levels, repeats, 147, 128] (float32) for a seed; the same for reals and fakes.

    Like the official code: standard normal in float64, each column normalized, then cast to float32.
    """
    g = torch.Generator().manual_seed(stream_seed(seed, STREAM_DIRECTIONS))
    d = torch.randn(num_levels, DIR_REPEATS, DESCRIPTOR_DIM, DIRS_PER_REPEAT, dtype=torch.float64, generator=g)
    d = d / d.square().sum(dim=2, keepdim=True).sqrt()
    return d.float().to(device)


# ----------------------------------------------------------------------------------------------------------
# Streaming metric


class SWD:
    """Streaming multi-scale SWD between a real and a generated image set (official units: x1e3).

    >>> swd = SWD(resolution=32, seed=0)
    >>> for batch in real_batches: swd.update_real(batch)    # uint8 [B, 1|3, 32, 32]
    >>> for batch in fake_batches: swd.update_fake(batch)
    >>> swd.compute()   # {"swd_32": ..., "swd_16": ..., "swd_avg": ...}

    Reals can be kept and compared against several fake sets (``reset_fake``). Memory: at most 128 * 147
    floats per image and level per set (about 1.2 GB per level for 16,384 images), never the images;
    ``storage_device="cpu"`` keeps the descriptors in host memory while computing on the GPU.
    ``method``: "sort" (the official sort; "auto" is the same, kept for callers that pass it).
    """

    def __init__(
        self,
        resolution: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        method: Method = "auto",
        storage_device: torch.device | str | None = None,
    ):
        self.resolution = int(resolution)
        self.levels = swd_resolutions(self.resolution)
        self.device = torch.device(device)
        self.storage = torch.device(storage_device) if storage_device is not None else self.device
        self.seed = int(seed)
        self.method: Method = method
        _resolve_method(method)
        self._real = self._bank(STREAM_REAL)
        self._fake = self._bank(STREAM_FAKE)

    def _bank(self, stream: int) -> DescriptorBank:
        return DescriptorBank(self.levels, self.seed, stream, self.device, self.storage)

    @property
    def num_real(self) -> int:
        return self._real.count

    @property
    def num_fake(self) -> int:
        return self._fake.count

    @torch.no_grad()
    def update_real(self, images: torch.Tensor) -> None:
        """Add a uint8 [B, 1|3, H, W] batch of real images."""
        self._real.update(images)

    @torch.no_grad()
    def update_fake(self, images: torch.Tensor) -> None:
        """Add a uint8 [B, 1|3, H, W] batch of generated images."""
        self._fake.update(images)

    def reset_fake(self) -> None:
        """Forget the generated images (keep the reals) to evaluate another generator or snapshot."""
        self._fake = self._bank(STREAM_FAKE)

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        """SWD x1e3 per level (``swd_<res>``) and their mean (``swd_avg``), as in the paper's Table 1."""
        if self.num_real == 0 or self.num_real != self.num_fake:
            raise SWDError(
                f"SWD compares equal numbers of real and generated images (official behaviour); "
                f"got {self.num_real} real and {self.num_fake} generated"
            )
        directions = random_directions(self.seed, len(self.levels), self.device)
        out: dict[str, float] = {}
        for li, res in enumerate(self.levels):
            xa, ma, mom_a = self._real.level(li)
            xb, mb, mom_b = self._fake.level(li)
            dist = _level_distance(xa, xb, mom_a, mom_b, directions[li], self.method, ma, mb)
            out[f"swd_{res}"] = dist * 1e3
        out["swd_avg"] = sum(out[f"swd_{r}"] for r in self.levels) / len(self.levels)
        return out


# ----------------------------------------------------------------------------------------------------------
# One-shot helpers

def sliced_wasserstein_distance(
    real: ImageSource,
    fake: ImageSource,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    num: int | None = None,
    method: Method = "auto",
    progress: bool | None = None,
) -> dict[str, float]:
    """SWD x1e3 between two uint8 image sets (tensors [N, C, H, W] or iterables of batches)."""
    from tqdm.auto import tqdm

    def feed(swd: SWD, name: str, source: ImageSource) -> None:
        for batch in tqdm(iter_batches(source, batch_size, num), desc=f"SWD {name}", unit="batch", disable=not progress if progress is not None else None, leave=False):
            (swd.update_real if name == "real" else swd.update_fake)(batch)

    both_tensors = isinstance(real, torch.Tensor) and isinstance(fake, torch.Tensor) and real.dim() == 4 and real.shape[0] > 0
    if both_tensors and torch.device(device).type == "cpu" and min(torch.get_num_threads(), os.cpu_count() or 1) > 1:
        # The two sets are independent: extract the fakes in a second thread (torch releases the GIL, and each
        # bank runs single-threaded ops), the same numbers as one after the other.
        # torch's thread count is process-wide: set it once here, or the banks' nested save/restore would race.
        swd = SWD(real.shape[-1], device=device, seed=seed, method=method)
        with _intra_op_threads(1), ThreadPoolExecutor(1) as pool:
            fakes = pool.submit(feed, swd, "fake", fake)
            feed(swd, "real", real)
            fakes.result()
        return swd.compute()
    lazy: SWD | None = None  # made from the first batch: iterables are read once
    for name, source in (("real", real), ("fake", fake)):
        for batch in tqdm(iter_batches(source, batch_size, num), desc=f"SWD {name}", unit="batch", disable=not progress if progress is not None else None, leave=False):
            if lazy is None:
                lazy = SWD(batch.shape[-1], device=device, seed=seed, method=method)
            (lazy.update_real if name == "real" else lazy.update_fake)(batch)
    if lazy is None:
        raise SWDError("SWD got no images")
    return lazy.compute()


def swd_noise_floor(
    real: torch.Tensor,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    num: int | None = None,
    method: Method = "auto",
) -> dict[str, float]:
    """Real-vs-real SWD: the first half of ``real`` against the second half (the estimator's floor).

    With ``num``, each half has ``num`` images (2 * num are needed). A generator whose SWD is at this
    floor is indistinguishable from the data at this sample size.
    """
    if not isinstance(real, torch.Tensor):
        raise SWDError("swd_noise_floor needs the real images as one uint8 tensor [N, C, H, W]")
    half = real.shape[0] // 2 if num is None else int(num)
    if half < 1 or 2 * half > real.shape[0]:
        raise SWDError(f"swd_noise_floor needs 2 x {half} real images, got {real.shape[0]}")
    return sliced_wasserstein_distance(
        real[:half], real[half : 2 * half], seed=seed, device=device, batch_size=batch_size, method=method
    )
