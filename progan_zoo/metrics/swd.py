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
size or the device. The 1-D Wasserstein distances are computed exactly; on CPU without a full sort (see
``_w1_bucket_sums``), which is what makes the CPU path fast.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Literal, Sequence

import torch
import torch.nn.functional as F

from progan_zoo.errors import UserError

NHOOD_SIZE = 7  # official nhood_size: 7x7 neighbourhoods
NHOODS_PER_IMAGE = 128  # official nhoods_per_image
DIR_REPEATS = 4  # official dir_repeats
DIRS_PER_REPEAT = 128  # official dirs_per_repeat
MIN_RESOLUTION = 16  # the pyramid stops at 16x16 (official: `while res >= 16`)
DESCRIPTOR_DIM = 3 * NHOOD_SIZE * NHOOD_SIZE  # 147

# Random streams: one per role, so that real/fake patches and directions never share random numbers.
STREAM_REAL, STREAM_FAKE, STREAM_DIRECTIONS = 0, 1, 2

Method = Literal["auto", "sort", "bucket"]


class SWDError(UserError):
    """Bad input to the SWD metric (wrong dtype, shape, counts)."""


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


def _window_offsets(size: int, device: torch.device) -> torch.Tensor:
    """Flat offsets [147] of a 7x7x3 window around its centre in a [3, size, size] image.

    Component order follows the official code: its np.ogrid puts x (the column offset) on axis 2 and y on
    axis 3, so each 7x7 block is stored transposed. The order does not change SWD's distribution, but it
    makes our descriptors identical to the official ones for the same positions.
    """
    half = NHOOD_SIZE // 2
    r = torch.arange(-half, half + 1, device=device)
    chan = torch.arange(3, device=device).view(3, 1, 1) * size * size
    return (chan + r.view(1, NHOOD_SIZE, 1) + r.view(1, 1, NHOOD_SIZE) * size).reshape(-1)


def _gather_windows(level: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Windows [M, 147] around flat centres (b * 3 * S * S + y * S + x) of ``level`` [B, 3, S, S]."""
    s = level.shape[-1]
    idx = centres.view(-1, 1) + _window_offsets(s, level.device).view(1, -1)
    if level.numel() < 2**31:
        idx = idx.int()  # int32 gathers are cheaper
    return torch.index_select(level.reshape(-1), 0, idx.view(-1)).view(-1, DESCRIPTOR_DIM)


def extract_descriptors(level: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """All 7x7 neighbourhoods: ``level`` [B, 3, S, S], centres ``xs``/``ys`` [B, P] -> [B*P, 3, 7, 7]."""
    b, _, s, _ = level.shape
    img = torch.arange(b, device=level.device).view(b, 1) * (3 * s * s)
    centres = img + ys.to(level.device) * s + xs.to(level.device)
    return _gather_windows(level, centres).view(-1, 3, NHOOD_SIZE, NHOOD_SIZE)


def _dedup_pays(size: int) -> bool:
    """Whether a level repeats enough patches to store them once with a count.

    With P = (size - 6)**2 valid centres and 128 draws, the expected share of distinct patches is
    P / 128 * (1 - (1 - 1/P)**128): 56% at 16x16, 91% at 32x32, 98% at 64x64. Counting costs a weighted
    histogram later, so only levels with many repeats (under 80% distinct) use it.
    """
    p = (size - 2 * (NHOOD_SIZE // 2)) ** 2
    return p / NHOODS_PER_IMAGE * (1.0 - (1.0 - 1.0 / p) ** NHOODS_PER_IMAGE) < 0.8


def _unique_descriptors(level: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct neighbourhoods [M, 147] of a batch and how often each was drawn ([M], int32).

    Small levels repeat positions (16x16 has 100 valid centres for 128 draws): a drawn-twice patch is one
    descriptor counted twice, which is the same multiset for SWD at a fraction of the projection work.
    """
    b, _, s, _ = level.shape
    key = torch.arange(b, device=level.device).view(b, 1) * (s * s) + ys.to(level.device) * s + xs.to(level.device)
    key, mult = torch.unique(key.view(-1), return_counts=True)
    centres = key + (key // (s * s)) * (2 * s * s)  # image b starts at b * 3 * S * S
    return _gather_windows(level, centres), mult.int()


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
        flat = desc.reshape(desc.shape[0], DESCRIPTOR_DIM)  # [M, 147]
        w = flat.new_ones(1, flat.shape[0]) if mult is None else mult.to(flat.dtype).view(1, -1)
        self.s1 += (w @ flat).view(3, -1).sum(dim=1, dtype=torch.float64)
        self.s2 += (w @ flat.square()).view(3, -1).sum(dim=1, dtype=torch.float64)
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
# Sliced Wasserstein distance between two descriptor sets


def random_directions(seed: int, num_levels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Unit directions [levels, repeats, 147, 128] (float32) for a seed; the same for reals and fakes.

    Like the official code: standard normal in float64, each column normalized, then cast to float32.
    """
    g = torch.Generator().manual_seed(_stream_seed(seed, STREAM_DIRECTIONS))
    d = torch.randn(num_levels, DIR_REPEATS, DESCRIPTOR_DIM, DIRS_PER_REPEAT, dtype=torch.float64, generator=g)
    d = d / d.square().sum(dim=2, keepdim=True).sqrt()
    return d.float().to(device)


def _projection(directions: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold the per-channel normalization into the directions: ((x - m) / s) . d == x . (d / s) - (m / s) . d.

    Returns the scaled directions transposed [D, 147] (float32) and the per-direction shift [D] (float64),
    so the raw descriptors are projected directly and never copied into a normalized set.
    """
    per_comp = NHOOD_SIZE * NHOOD_SIZE
    dev = directions.device
    inv = (1.0 / std).repeat_interleave(per_comp).to(dev)  # [147], channel-major like the descriptor
    w = (directions.double() * inv.view(-1, 1)).float()  # [147, D]
    shift = (w.double() * mean.repeat_interleave(per_comp).to(dev).view(-1, 1)).sum(dim=0)
    return w.t().contiguous(), shift


def _w1_sorted_sums(
    pa: torch.Tensor, pb: torch.Tensor, sa: torch.Tensor, sb: torch.Tensor,
    ma: torch.Tensor | None = None, mb: torch.Tensor | None = None,
) -> torch.Tensor:
    """sum_i |a_(i) - b_(i)| per row, a = pa - sa, b = pb - sb, by sorting (the official way; fast on GPU).

    ``ma``/``mb``: multiplicities of the columns (repeated patches), expanded before sorting.
    """
    a = pa - sa.float().view(-1, 1)
    b = pb - sb.float().view(-1, 1)
    if ma is not None:
        a = a.repeat_interleave(ma.long(), dim=1)
    if mb is not None:
        b = b.repeat_interleave(mb.long(), dim=1)
    return (a.sort(dim=1).values - b.sort(dim=1).values).abs().sum(dim=1, dtype=torch.float64)


BUCKET_ELEMENTS = 1 << 20  # elements per call of the bucket kernel: amortizes per-call work, stays in cache
BUCKET_CHUNK = 32  # directions projected at once by a worker thread
ELEMENTS_PER_BUCKET = 4  # average occupancy of the first-pass buckets
REFINE = 16  # sub-buckets per undecided bucket in a refinement round
EXACT_BELOW = 4096  # undecided elements at most this many are sorted directly


class _Scratch:
    """Per-thread buffers of the bucket kernel, reused across calls (fresh allocations page-fault on CPU)."""

    def __init__(self, rows: int, na: int, nb: int, ma: torch.Tensor | None, mb: torch.Tensor | None, device: torch.device):
        self.rows, self.na, self.nb = rows, na, nb
        size = rows * (na + nb)
        self.u = torch.empty(size, dtype=torch.float32, device=device)
        self.idx = torch.empty(size, dtype=torch.int32, device=device)
        self.flag = torch.empty(size, dtype=torch.uint8, device=device)
        # Element weights in the buffer's layout (rows of set A, then rows of set B); None: all ones.
        self.mult = None
        self.wfrac = None
        if ma is not None:
            self.mult = torch.cat([ma.float().repeat(rows), mb.float().repeat(rows)])
            self.wfrac = torch.empty(size, dtype=torch.float32, device=device)

    def split(self, t: torch.Tensor, c: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first c rows of each set as [c, na] and [c, nb] views, and the flat used part."""
        a = t[: self.rows * self.na].view(self.rows, self.na)[:c]
        b = t[self.rows * self.na : self.rows * (self.na + self.nb)].view(self.rows, self.nb)[:c]
        return a, b, t


def _bucket_step(counts: torch.Tensor, fracs: torch.Tensor, d0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the bucket integral for groups of consecutive buckets.

    ``counts`` (int64) and ``fracs`` (float64): [2, groups, buckets] weights and weighted in-bucket
    positions of the two sets; ``d0``: G at each group's lower edge (None: 0). Returns the integral of |G|
    over the buckets where G keeps its sign ([groups], in bucket widths), the undecided-bucket mask and G
    at every lower bucket edge.
    """
    ca, cb = counts[0], counts[1]
    net = ca - cb
    d = net.cumsum(dim=1) - net
    if d0 is not None:
        d += d0.view(-1, 1)
    pos = d >= cb  # G >= 0 across the bucket
    neg = d <= -ca  # G <= 0 across the bucket
    # Integral of G over a bucket: d + sum_a w (1 - frac_a) - sum_b w (1 - frac_b).
    value = (d + net).double() - (fracs[0] - fracs[1])
    total = torch.where(pos, value, torch.where(neg, -value, 0.0)).sum(dim=1)
    return total, ~(pos | neg), d


def _integrate_groups(
    group: torch.Tensor, pos: torch.Tensor, step: torch.Tensor, d0: torch.Tensor, groups: int, depth: int = 0
) -> torch.Tensor:
    """Integral over [0, 1] of |G| per group: G starts at ``d0[g]`` and jumps by ``step`` (+w for the first
    set, -w for the second) at each element's position ``pos`` (float64). Refines into sub-buckets while
    many elements are left, then sorts."""
    if group.numel() <= EXACT_BELOW or depth >= 3:
        return _integrate_sorted(group, pos, step, d0, groups)
    sub = (pos * REFINE).floor_().clamp_(max=REFINE - 1)
    frac = pos * REFINE - sub
    key = group * REFINE + sub.long()
    side = (step < 0).long() * (groups * REFINE)
    weight = step.abs().double()
    counts = torch.bincount(key + side, weights=weight, minlength=2 * groups * REFINE).long().view(2, groups, REFINE)
    fracs = torch.bincount(key + side, weights=weight * frac, minlength=2 * groups * REFINE).view(2, groups, REFINE)
    total, undecided, d = _bucket_step(counts, fracs, d0)
    total /= REFINE
    flat = undecided.view(-1)
    if bool(flat.any()):
        ids = flat.long().cumsum(0) - 1  # compact numbering of the undecided sub-buckets
        keep = flat[key]
        inner = _integrate_groups(ids[key[keep]], frac[keep], step[keep], d.reshape(-1)[flat], int(ids[-1]) + 1, depth + 1)
        total.index_add_(0, flat.nonzero().squeeze(1) // REFINE, inner / REFINE)
    return total


def _integrate_sorted(group: torch.Tensor, pos: torch.Tensor, step: torch.Tensor, d0: torch.Tensor, groups: int) -> torch.Tensor:
    """The same integral by sorting each group's elements and summing |G| over the gaps between them."""
    order = torch.argsort(group.double() * 2.0 + pos)  # groups apart, then position (exact in float64)
    group, pos, step = group[order], pos[order], step[order]
    start = torch.ones_like(group, dtype=torch.bool)
    start[1:] = group[1:] != group[:-1]
    cs = step.cumsum(0)
    level = d0[group] + cs - (cs - step)[start][start.long().cumsum(0) - 1]  # G just after each element
    nxt = torch.ones_like(pos)  # next position in the group, 1 (the bucket's upper edge) after the last
    nxt[:-1] = torch.where(start[1:], 1.0, pos[1:])
    out = torch.zeros(groups, dtype=torch.float64, device=pos.device)
    out.index_add_(0, group, level.abs().double() * (nxt - pos))
    out.index_add_(0, group[start], d0[group[start]].abs().double() * pos[start])
    return out


def _w1_bucket_sums(pa: torch.Tensor, pb: torch.Tensor, sa: torch.Tensor, sb: torch.Tensor, scratch: _Scratch) -> torch.Tensor:
    """Exact sum_i |a_(i) - b_(i)| per row without sorting; a = pa - sa ([c, na]), b = pb - sb ([c, nb]),
    columns weighted by the scratch's multiplicities (equal total weight on both sides).

    For equal-size sets, sum_i |a_(i) - b_(i)| is the integral of |G(t)|, G(t) = #{a <= t} - #{b <= t}.
    Cut each row's value range into K equal buckets. One histogram pass gives the counts per bucket and so
    G at every lower bucket edge (d_k). Where d_k - #b_k >= 0 (or d_k + #a_k <= 0) G keeps its sign across
    the bucket, and its integral there is linear in the element positions, so per-bucket sums suffice:
    sign * (d_k + #a_k - #b_k - sum_a frac_a + sum_b frac_b), in bucket widths. Buckets where G may cross
    zero (a few percent of the elements) are split into sub-buckets the same way and finally sorted. The
    result is the sorted-difference sum up to float rounding, from a few linear passes instead of sorts.
    """
    c = pa.shape[0]
    dev = pa.device
    ua, ub, u = scratch.split(scratch.u, c)
    ia, ib, idx = scratch.split(scratch.idx, c)
    used = c * (scratch.na + scratch.nb)
    if c < scratch.rows:  # the last chunk: pack both sets' rows contiguously
        ua = scratch.u[: c * scratch.na].view(c, scratch.na)
        ub = scratch.u[c * scratch.na : used].view(c, scratch.nb)
        ia = scratch.idx[: c * scratch.na].view(c, scratch.na)
        ib = scratch.idx[c * scratch.na : used].view(c, scratch.nb)
    u, idx, flag = scratch.u[:used], scratch.idx[:used], scratch.flag[:used]
    k = max(1, max(scratch.na, scratch.nb) // ELEMENTS_PER_BUCKET)
    kb = k + 3  # data in buckets 1..K+1 (the grid origin is rounded down); 0 and K+2 absorb rounding

    # Values a = pa - sa and b = pb - sb, the shifts rounded to float32 like a float32 normalization.
    torch.sub(pa, sa.float().view(c, 1), out=ua)
    torch.sub(pb, sb.float().view(c, 1), out=ub)
    lo = torch.minimum(ua.amin(dim=1), ub.amin(dim=1)).double()
    hi = torch.maximum(ua.amax(dim=1), ub.amax(dim=1)).double()
    inv32 = torch.where(hi > lo, k / (hi - lo), torch.zeros_like(lo)).float()
    inv = inv32.double()  # the exact scale used below; bucket width = 1 / inv
    origin = torch.floor(lo * inv)  # grid origin on a whole bucket: the added constant is an exact integer
    if bool((origin.abs() > 2**22).any()):
        # Values far from zero relative to their spread: float32 bucket positions would lose precision.
        return _w1_sorted_sums(pa, pb, sa, sb, *_column_weights(scratch, c))
    # u = value / width - origin + 1: bucket number in the integer part, position inside it in the fraction.
    # Both sets share the scale and the integer offset, so rounding adds only per-element noise of ~1e-3
    # bucket, the precision of the float32 values themselves.
    bias = (1.0 - origin).float().view(c, 1)
    torch.addcmul(bias, ua, inv32.view(c, 1), out=ua)
    torch.addcmul(bias, ub, inv32.view(c, 1), out=ub)
    idx.copy_(u)  # truncation == floor, u > 0
    u.sub_(idx)  # fraction inside the bucket, [0, 1)
    rows = torch.arange(c, device=dev, dtype=torch.int32).view(c, 1) * kb
    ia.add_(rows)
    ib.add_(rows + c * kb)
    size = 2 * c * kb
    if scratch.mult is None:
        counts = torch.bincount(idx, minlength=size)
        fracs = torch.bincount(idx, weights=u, minlength=size)
    else:
        mult = scratch.mult[:used] if c == scratch.rows else torch.cat([scratch.mult[: c * scratch.na], scratch.mult[scratch.rows * scratch.na : scratch.rows * scratch.na + c * scratch.nb]])
        counts = torch.bincount(idx, weights=mult, minlength=size).long()
        fracs = torch.bincount(idx, weights=torch.mul(u, mult, out=scratch.wfrac[:used]), minlength=size)
    total, undecided, d = _bucket_step(counts.view(2, c, kb), fracs.double().view(2, c, kb), None)

    flat = undecided.view(-1)  # [c * kb]: row * kb + bucket
    if bool(flat.any()):
        torch.index_select(flat.to(torch.uint8).repeat(2), 0, idx, out=flag)
        sel = flag.nonzero().squeeze(1)
        second = sel >= c * scratch.na
        key = idx.index_select(0, sel).long() - second.long() * (c * kb)  # row * kb + bucket
        ids = flat.long().cumsum(0) - 1  # compact numbering of the undecided buckets
        weight = torch.ones_like(key) if scratch.mult is None else mult.index_select(0, sel).long()
        step = torch.where(second, -weight, weight)  # G steps up at set A's elements, down at set B's
        inner = _integrate_groups(
            ids.index_select(0, key), u.index_select(0, sel).double(), step, d.reshape(-1)[flat], int(ids[-1]) + 1
        )
        total.index_add_(0, flat.nonzero().squeeze(1) // kb, inner)
    return torch.where(inv > 0, total / inv.clamp_min(1e-300), torch.zeros_like(total))


def _column_weights(scratch: _Scratch, c: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if scratch.mult is None:
        return None, None
    return scratch.mult[: scratch.na].int(), scratch.mult[scratch.rows * scratch.na : scratch.rows * scratch.na + scratch.nb].int()


@contextlib.contextmanager
def _full_precision_matmul() -> Iterator[None]:
    # TF32 would change the projections at the 1e-3 level; the official projections are float32 matmuls.
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


@contextlib.contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _resolve_method(method: Method, device: torch.device) -> str:
    if method == "auto":
        return "sort" if device.type == "cuda" else "bucket"
    if method not in ("sort", "bucket"):
        raise SWDError(f"unknown SWD method {method!r}; known: auto, bucket, sort")
    return method


def _level_distance(
    xa: torch.Tensor,
    xb: torch.Tensor,
    moments_a: tuple[torch.Tensor, torch.Tensor],
    moments_b: tuple[torch.Tensor, torch.Tensor],
    directions: torch.Tensor,
    method: Method = "auto",
    mult_a: torch.Tensor | None = None,
    mult_b: torch.Tensor | None = None,
) -> float:
    """Official sliced_wasserstein on one level: mean over repeats of mean_{i,dir} |a_(i) - b_(i)|.

    ``xa``/``xb``: raw descriptors [M, 147] with multiplicities ``mult_*`` (None: 1) and per-channel
    (mean, std); ``directions``: [repeats, 147, dirs]. Directions are handled in chunks (projection
    memory stays bounded); on CPU the chunks go to one worker thread per core, each single-threaded,
    which uses the cores without nested OpenMP teams (those stall badly on a busy machine).
    """
    method = _resolve_method(method, xa.device)
    na_total = xa.shape[0] if mult_a is None else int(mult_a.sum())
    nb_total = xb.shape[0] if mult_b is None else int(mult_b.sum())
    if na_total != nb_total:
        raise SWDError(f"SWD needs as many descriptors in both sets, got {na_total} and {nb_total}")
    if (mult_a is None) != (mult_b is None):
        mult_a = torch.ones(xa.shape[0], dtype=torch.int32, device=xa.device) if mult_a is None else mult_a
        mult_b = torch.ones(xb.shape[0], dtype=torch.int32, device=xb.device) if mult_b is None else mult_b
    repeats, _, ndirs = directions.shape
    width = max(xa.shape[0], xb.shape[0])
    projections = [(_projection(directions[r], *moments_a), _projection(directions[r], *moments_b)) for r in range(repeats)]

    if method == "sort":
        chunk = int(min(ndirs, max(1, (1 << 26) // max(width, 1))))
        per_repeat = []
        with _full_precision_matmul():
            for (wa, sa), (wb, sb) in projections:
                total = torch.zeros((), dtype=torch.float64, device=xa.device)
                for j in range(0, ndirs, chunk):
                    pa = torch.mm(wa[j : j + chunk], xa.t())  # [chunk, Ma]: one direction per row
                    pb = torch.mm(wb[j : j + chunk], xb.t())
                    total += _w1_sorted_sums(pa, pb, sa[j : j + chunk], sb[j : j + chunk], mult_a, mult_b).sum()
                per_repeat.append(float(total) / (na_total * ndirs))
        return sum(per_repeat) / len(per_repeat)

    workers = max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
    chunk = int(min(BUCKET_CHUNK, max(1, (1 << 24) // max(width, 1))))
    per_call = int(min(chunk, max(1, BUCKET_ELEMENTS // (xa.shape[0] + xb.shape[0]))))
    local = threading.local()

    def job(r: int, j: int) -> float:
        if not hasattr(local, "scratch"):
            local.scratch = _Scratch(per_call, xa.shape[0], xb.shape[0], mult_a, mult_b, xa.device)
        (wa, sa), (wb, sb) = projections[r]
        pa = torch.mm(wa[j : j + chunk], xa.t())  # [chunk, Ma]: one direction per row
        pb = torch.mm(wb[j : j + chunk], xb.t())
        total = 0.0
        for i in range(0, pa.shape[0], per_call):
            rows = slice(i, min(i + per_call, pa.shape[0]))
            shifts = slice(j + rows.start, j + rows.stop)
            total += float(_w1_bucket_sums(pa[rows], pb[rows], sa[shifts], sb[shifts], local.scratch).sum())
        return total

    tasks = [(r, j) for r in range(repeats) for j in range(0, ndirs, chunk)]
    with _intra_op_threads(1):
        if workers == 1:
            sums = [job(r, j) for r, j in tasks]
        else:
            with ThreadPoolExecutor(workers) as pool:
                sums = list(pool.map(lambda t: job(*t), tasks))
    per_repeat = [0.0] * repeats
    for (r, _), v in zip(tasks, sums):
        per_repeat[r] += v / (na_total * ndirs)
    return sum(per_repeat) / len(per_repeat)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor, method: Method = "auto") -> float:
    """Official ``sliced_wasserstein`` for normalized descriptors ``a``, ``b`` [N, 147] (same N).

    ``directions``: [repeats, 147, dirs]. Returns the raw distance (not yet x1e3).
    """
    unit = (torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    return _level_distance(a, b, unit, unit, directions.to(a.device), method)


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

    def update(self, images: torch.Tensor) -> None:
        # Many mid-sized ops per batch: intra-op thread teams cost more than they give (a lot on a busy CPU).
        with _intra_op_threads(1) if self.device.type == "cpu" else contextlib.nullcontext():
            self._update(images)

    def _update(self, images: torch.Tensor) -> None:
        x = to_rgb_float(images, self.levels[0], self.device)
        xs, ys = patch_positions(self.seed, self.stream, self.count, x.shape[0], self.levels)
        for li, level in enumerate(laplacian_pyramid(x, len(self.levels))):
            if _dedup_pays(self.levels[li]):
                desc, mult = _unique_descriptors(level, xs[:, li], ys[:, li])
                self.mult[li].append(mult.to(self.storage))
            else:
                desc = extract_descriptors(level, xs[:, li], ys[:, li]).view(-1, DESCRIPTOR_DIM)
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
    ``method``: "sort" (the official sort, default on CUDA) or "bucket" (the same numbers without a full
    sort, default on CPU).
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
        _resolve_method(method, self.device)
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

    swd: SWD | None = None
    for name, source in (("real", real), ("fake", fake)):
        for batch in tqdm(iter_batches(source, batch_size, num), desc=f"SWD {name}", unit="batch", disable=not progress if progress is not None else None, leave=False):
            if swd is None:
                swd = SWD(batch.shape[-1], device=device, seed=seed, method=method)
            (swd.update_real if name == "real" else swd.update_fake)(batch)
    if swd is None:
        raise SWDError("SWD got no images")
    return swd.compute()


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
