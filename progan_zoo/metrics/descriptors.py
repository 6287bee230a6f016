"""SWD's descriptors: random 7x7 neighbourhoods of every pyramid level of an image set (official ProGAN).

Per image and level, 128 neighbourhood centres (>= 3 px from the border) drawn from the image's own
random stream (``stream_seed``: seed, set, image index), so positions do not depend on the batch size
or device; each neighbourhood is a 3*7*7 = 147-d descriptor, in the official component order. Per
level and set the descriptors are normalized per colour channel over the whole set (the moments are
summed while extracting). ``DescriptorBank`` keeps one set's descriptors level by level as images
stream in: repeated patches of small levels once with a count, greyscale once instead of three
times. The distance between two banks is swd.py's (with w1.py's engine).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch

from .pyramid import laplacian_pyramid
from .w1 import SWDError, _intra_op_threads

NHOOD_SIZE = 7  # official nhood_size: 7x7 neighbourhoods
NHOODS_PER_IMAGE = 128  # official nhoods_per_image
DESCRIPTOR_DIM = 3 * NHOOD_SIZE * NHOOD_SIZE  # 147


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


def stream_seed(seed: int, stream: int, index: int = 0) -> int:
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
        g.manual_seed(stream_seed(seed, stream, first_index + i))
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



class DescriptorBank:
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
