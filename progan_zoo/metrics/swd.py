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
``batches.iter_batches``.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import torch
import torch.nn.functional as F

from .batches import ImageSource, iter_batches
from .w1 import Method, SWDError, _intra_op_threads, _level_distance, _resolve_method

NHOOD_SIZE = 7  # official nhood_size: 7x7 neighbourhoods
NHOODS_PER_IMAGE = 128  # official nhoods_per_image
DIR_REPEATS = 4  # official dir_repeats
DIRS_PER_REPEAT = 128  # official dirs_per_repeat
MIN_RESOLUTION = 16  # the pyramid stops at 16x16 (official: `while res >= 16`)
DESCRIPTOR_DIM = 3 * NHOOD_SIZE * NHOOD_SIZE  # 147

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


def to_rgb_float(images: torch.Tensor, resolution: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Check a uint8 [N, C, H, W] batch and return it as float32 RGB on ``device``.

    Greyscale is repeated to three channels, as the official evaluation does (np.tile), so numbers stay
    comparable with RGB datasets.
    """
    if not isinstance(images, torch.Tensor):
        raise SWDError(f"SWD expects uint8 image tensors [N, C, H, W], got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise SWDError(f"SWD expects uint8 images in [0, 255], got dtype {images.dtype}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise SWDError(f"SWD expects images shaped [N, 1 or 3, H, W], got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if h != w:
        raise SWDError(f"SWD expects square images, got {h}x{w}")
    if resolution is not None and h != resolution:
        raise SWDError(f"SWD was set up for {resolution}x{resolution} images, got {h}x{w}")
    x = images.to(device=device if device is not None else images.device, dtype=torch.float32)
    if c == 1:
        x = x.expand(n, 3, h, w)
    return x.contiguous()


# ----------------------------------------------------------------------------------------------------------
# Laplacian pyramid (official pyr_down / pyr_up: cv2.pyrDown/pyrUp with scipy's "mirror" borders)

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # / 16: the official 5x5 filter is the outer product of this with itself


def _separable_blur(x: torch.Tensor, gain: float, stride: int) -> torch.Tensor:
    """5x5 binomial filter (times ``gain`` per axis) with mirror borders, keeping every ``stride``-th pixel.

    torch's 'reflect' padding is scipy's 'mirror' (d c b | a b c d). Five shifted slices per axis: for a
    5-tap filter this is cheaper than a convolution call on tiny images.
    """
    taps = [t * gain / 16.0 for t in _BINOMIAL]
    h, w = x.shape[-2:]
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    y = F.pad(x, (2, 2, 2, 2), mode="reflect")  # [N, C, H+4, W+4]
    rows = y[..., 0 : stride * (wo - 1) + 1 : stride] * taps[0]
    for t in range(1, 5):
        rows.add_(y[..., t : t + stride * (wo - 1) + 1 : stride], alpha=taps[t])
    out = rows[..., 0 : stride * (ho - 1) + 1 : stride, :] * taps[0]
    for t in range(1, 5):
        out.add_(rows[..., t : t + stride * (ho - 1) + 1 : stride, :], alpha=taps[t])
    return out


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, then keep every second row and column (official pyr_down)."""
    return _separable_blur(x, gain=1.0, stride=2)


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels, then blur with 4x the filter (official pyr_up)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    # 4 * f2d == (2 * f1d) x (2 * f1d); the mirror border is taken on the zero-filled image, as officially.
    return _separable_blur(up, gain=2.0, stride=1)


def laplacian_pyramid(x: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels from full size down; the last level is the low-pass residual (official order)."""
    levels = [x]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1])
    return levels


# ----------------------------------------------------------------------------------------------------------
# Descriptors


def _stream_seed(seed: int, stream: int, index: int = 0) -> int:
    """A 32-bit generator seed for (seed, stream, index), mixed with splitmix64.

    torch's CPU generator (mt19937) only uses the low 32 bits of a seed, so the three parts are hashed
    rather than packed into bit fields.
    """
    mask = (1 << 64) - 1
    z = 0
    for part in (seed, stream, index):
        z = (z + 0x9E3779B97F4A7C15 + (int(part) & mask)) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
    return z & 0xFFFFFFFF


def patch_positions(
    seed: int, stream: int, first_index: int, count: int, level_sizes: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres of the 128 neighbourhoods of images ``first_index .. first_index+count-1`` on every level.

    Returns ``xs, ys`` shaped [count, levels, 128] (int64, CPU). Every image has its own generator seeded
    from (seed, stream, image index), so positions do not depend on batching or device. Like the official
    ``np.random.randint(3, size - 3)``, centres are uniform in [3, size - 4].
    """
    half = NHOOD_SIZE // 2
    num_levels = len(level_sizes)
    span = torch.tensor(level_sizes, dtype=torch.float64).view(1, num_levels, 1, 1) - 2 * half
    u = torch.empty(count, num_levels, 2, NHOODS_PER_IMAGE, dtype=torch.float64)
    g = torch.Generator()
    for i in range(count):
        g.manual_seed(_stream_seed(seed, stream, first_index + i))
        torch.rand(num_levels, 2, NHOODS_PER_IMAGE, dtype=torch.float64, generator=g, out=u[i])
    pos = half + torch.floor(u * span).long()  # [count, L, 2, 128]
    return pos[:, :, 0], pos[:, :, 1]


def _gather_windows(level: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """Windows [M, 147] whose top-left pixel in channel 0 is at flat index ``corners`` of ``level`` [B, 3, S, S].

    A strided view puts every 7x7 window at its corner's flat index, so one index per window and channel
    suffices (not 147). Component order follows the official code: its np.ogrid puts x (the column offset)
    on axis 2 and y on axis 3, so each 7x7 block is stored transposed. The order does not change SWD's
    distribution, but it makes our descriptors identical to the official ones for the same positions.
    """
    c, s = level.shape[1], level.shape[-1]
    flat = level.reshape(-1)
    span = (NHOOD_SIZE - 1) * (s + 1)  # from a window's corner to its last pixel
    windows = flat.as_strided((flat.numel() - span, NHOOD_SIZE, NHOOD_SIZE), (1, 1, s))  # [P, x, y]
    chan = torch.arange(c, device=level.device) * (s * s)
    idx = (corners.view(-1, 1) + chan.view(1, c)).view(-1)
    return torch.index_select(windows, 0, idx).view(-1, c * NHOOD_SIZE * NHOOD_SIZE)


def extract_descriptors(level: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """All 7x7 neighbourhoods: ``level`` [B, C, S, S], centres ``xs``/``ys`` [B, P] -> [B*P, C, 7, 7]."""
    b, c, s, _ = level.shape
    half = NHOOD_SIZE // 2
    img = torch.arange(b, device=level.device).view(b, 1) * (c * s * s)
    corners = img + (ys.to(level.device) - half) * s + (xs.to(level.device) - half)
    return _gather_windows(level, corners).view(-1, c, NHOOD_SIZE, NHOOD_SIZE)


def _dedup_pays(size: int) -> bool:
    """Whether a level repeats enough patches to store them once with a count.

    With P = (size - 6)**2 valid centres and 128 draws, the expected share of distinct patches is
    P / 128 * (1 - (1 - 1/P)**128): 56% at 16x16, 91% at 32x32, 98% at 64x64. Counting costs a weighted
    histogram later, so only levels with many repeats (under 80% distinct) use it.
    """
    p = (size - 2 * (NHOOD_SIZE // 2)) ** 2
    return p / NHOODS_PER_IMAGE * (1.0 - (1.0 - 1.0 / p) ** NHOODS_PER_IMAGE) < 0.8


def _unique_descriptors(level: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct neighbourhoods [M, C*49] of a batch and how often each was drawn ([M], int32).

    Small levels repeat positions (16x16 has 100 valid centres for 128 draws): a drawn-twice patch is one
    descriptor counted twice, which is the same multiset for SWD at a fraction of the projection work.
    """
    b, c, s, _ = level.shape
    key = torch.arange(b, device=level.device).view(b, 1) * (s * s) + ys.to(level.device) * s + xs.to(level.device)
    key, mult = torch.unique(key.view(-1), return_counts=True)
    half = NHOOD_SIZE // 2
    corners = key + (key // (s * s)) * ((c - 1) * s * s) - half * (s + 1)  # image b starts at b * C * S * S
    return _gather_windows(level, corners), mult.int()


class _ChannelMoments:
    """Running per-channel sums of descriptor values and squares (float64), filled while extracting.

    The official finalize_descriptors normalizes every level with np.mean / np.std over axes (0, 2, 3)
    of the whole set; summing while each batch is in cache saves two passes over the set later.
    """

    def __init__(self, device: torch.device):
        self.count = 0
        self.s1 = torch.zeros(3, dtype=torch.float64, device=device)
        self.s2 = torch.zeros(3, dtype=torch.float64, device=device)

    def add(self, desc: torch.Tensor, mult: torch.Tensor | None = None) -> None:
        """Add descriptors [M, C*49] (C = 3, or 1 for greyscale: the three equal channels stored once)."""
        flat = desc.reshape(desc.shape[0], -1)  # [M, C*49]
        c = flat.shape[1] // (NHOOD_SIZE * NHOOD_SIZE)
        w = flat.new_ones(1, flat.shape[0]) if mult is None else mult.to(flat.dtype).view(1, -1)
        self.s1 += (w @ flat).view(c, -1).sum(dim=1, dtype=torch.float64)  # c == 1 broadcasts to all 3
        self.s2 += (w @ flat.square()).view(c, -1).sum(dim=1, dtype=torch.float64)
        self.count += int(w.sum().item()) * NHOOD_SIZE * NHOOD_SIZE

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.s1 / self.count
        std = (self.s2 / self.count - mean.square()).clamp_min(0).sqrt()
        # The official code divides by zero here (NaN); a constant channel carries no information: keep it 0.
        return mean, torch.where(std > 0, std, torch.ones_like(std))


def finalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Normalize [N, 3, 7, 7] descriptors per channel over the whole set; flatten to [N, 147] (official)."""
    moments = _ChannelMoments(desc.device)
    moments.add(desc)
    mean, std = moments.mean_std()
    out = (desc - mean.float().view(1, 3, 1, 1)) / std.float().view(1, 3, 1, 1)
    return out.reshape(desc.shape[0], DESCRIPTOR_DIM)


# ----------------------------------------------------------------------------------------------------------
# Random directions (the W1 engine that uses them is w1.py)


def random_directions(seed: int, num_levels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Unit directions [levels, repeats, 147, 128] (float32) for a seed; the same for reals and fakes.

    Like the official code: standard normal in float64, each column normalized, then cast to float32.
    """
    g = torch.Generator().manual_seed(_stream_seed(seed, STREAM_DIRECTIONS))
    d = torch.randn(num_levels, DIR_REPEATS, DESCRIPTOR_DIM, DIRS_PER_REPEAT, dtype=torch.float64, generator=g)
    d = d / d.square().sum(dim=2, keepdim=True).sqrt()
    return d.float().to(device)


# ----------------------------------------------------------------------------------------------------------
# Streaming metric


class _DescriptorBank:
    """Distinct descriptors of one image set with their multiplicities, level by level, plus moments."""

    def __init__(self, levels: list[int], seed: int, stream: int, device: torch.device, storage: torch.device):
        self.levels = levels
        self.seed = seed
        self.stream = stream
        self.device = device
        self.storage = storage
        self.desc: list[list[torch.Tensor]] = [[] for _ in levels]
        self.mult: list[list[torch.Tensor]] = [[] for _ in levels]
        self.moments = [_ChannelMoments(device) for _ in levels]
        self.count = 0
        self.grey = True  # every batch so far had one channel: descriptors are stored [M, 49]

    def update(self, images: torch.Tensor) -> None:
        # Many mid-sized ops per batch: intra-op thread teams cost more than they give (a lot on a busy CPU).
        with _intra_op_threads(1) if self.device.type == "cpu" else contextlib.nullcontext():
            self._update(images)

    def _update(self, images: torch.Tensor) -> None:
        x = to_rgb_float(images, self.levels[0], self.device)
        if self.grey and images.shape[1] == 1:
            # The official code tiles grey to RGB; the three channels are equal, so the pyramid and the
            # descriptors are kept once (_projection sums the directions over the channels instead).
            x = x[:, :1].contiguous()
        elif self.grey and self.count:
            # An RGB batch after grey ones: tile what is stored (channel-major blocks, as RGB descriptors are).
            self.desc = [[d.repeat(1, 3) for d in chunks] for chunks in self.desc]
        self.grey = self.grey and images.shape[1] == 1
        xs, ys = patch_positions(self.seed, self.stream, self.count, x.shape[0], self.levels)
        for li, level in enumerate(laplacian_pyramid(x, len(self.levels))):
            if _dedup_pays(self.levels[li]):
                desc, mult = _unique_descriptors(level, xs[:, li], ys[:, li])
                self.mult[li].append(mult.to(self.storage))
            else:
                desc = extract_descriptors(level, xs[:, li], ys[:, li]).view(level.shape[0] * NHOODS_PER_IMAGE, -1)
                mult = None
            self.moments[li].add(desc, mult)
            self.desc[li].append(desc.to(self.storage))
        self.count += x.shape[0]

    def level(self, li: int) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        # Merge the level's chunks once (a single copy in memory from then on).
        if len(self.desc[li]) > 1:
            self.desc[li] = [torch.cat(self.desc[li])]
        if len(self.mult[li]) > 1:
            self.mult[li] = [torch.cat(self.mult[li])]
        mult = self.mult[li][0].to(self.device) if self.mult[li] else None
        return self.desc[li][0].to(self.device), mult, self.moments[li].mean_std()


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

    def _bank(self, stream: int) -> _DescriptorBank:
        return _DescriptorBank(self.levels, self.seed, stream, self.device, self.storage)

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
