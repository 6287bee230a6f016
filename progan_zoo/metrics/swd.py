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
import math
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


def _binomial_1d(device: torch.device, gain: float = 1.0) -> torch.Tensor:
    # [1, 4, 6, 4, 1] / 16: the official 5x5 filter is exactly its outer product.
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float32, device=device) / 16.0
    return k * gain


def _separable_blur(x: torch.Tensor, gain: float, stride: int) -> torch.Tensor:
    """5x5 binomial filter with mirror borders ('reflect' in torch == scipy's 'mirror'), then subsample."""
    n, c, h, w = x.shape
    k = _binomial_1d(x.device, gain)
    y = F.pad(x.reshape(n * c, 1, h, w), (2, 2, 2, 2), mode="reflect")  # [N*C, 1, H+4, W+4]
    y = F.conv2d(y, k.view(1, 1, 1, 5), stride=(1, stride))  # rows
    y = F.conv2d(y, k.view(1, 1, 5, 1), stride=(stride, 1))  # columns
    return y.reshape(n, c, y.shape[-2], y.shape[-1])


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, then keep every second row and column (official pyr_down)."""
    return _separable_blur(x, gain=1.0, stride=2)


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels, then blur with 4x the filter (official pyr_up)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    # The official filter is 4 * f2d = (2 * f1d) x (2 * f1d); the mirror border is taken on the zero-filled image.
    return _separable_blur(up, gain=2.0, stride=1)


def laplacian_pyramid(x: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels from full size down, the last level being the low-pass residual (official order)."""
    levels = [x]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1])
    return levels


# ----------------------------------------------------------------------------------------------------------
# Descriptors


def patch_positions(
    seed: int, stream: int, first_index: int, count: int, level_sizes: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres of the 128 neighbourhoods of images ``first_index .. first_index+count-1`` on every level.

    Returns ``xs, ys`` of shape [count, levels, 128] (int64, CPU). Each image has its own generator seeded
    from (seed, stream, image index), so positions do not depend on how images are batched. Like the
    official ``np.random.randint(3, size - 3)``, centres are uniform in [3, size - 4].
    """
    half = NHOOD_SIZE // 2
    num_levels = len(level_sizes)
    sizes = torch.tensor(level_sizes, dtype=torch.float64).view(1, num_levels, 1, 1)
    u = torch.empty(count, num_levels, 2, NHOODS_PER_IMAGE, dtype=torch.float64)
    g = torch.Generator()
    for i in range(count):
        g.manual_seed(_stream_seed(seed, stream, first_index + i))
        torch.rand(num_levels, 2, NHOODS_PER_IMAGE, dtype=torch.float64, generator=g, out=u[i])
    pos = half + torch.floor(u * (sizes - 2 * half)).long()  # [count, L, 2, 128]
    return pos[:, :, 0], pos[:, :, 1]


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


def extract_descriptors(level: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Gather 7x7 neighbourhoods: ``level`` [B, 3, S, S], centres ``xs``/``ys`` [B, P] -> [B*P, 3, 7, 7].

    Component order follows the official code: its np.ogrid puts x (the column offset) on axis 2 and y on
    axis 3, so each 7x7 block is stored transposed. The order is irrelevant to SWD's distribution but it makes
    the descriptors identical to the official ones when fed the same positions.
    """
    b, c, s, _ = level.shape
    p = xs.shape[1]
    half = NHOOD_SIZE // 2
    dev = level.device
    off = torch.arange(-half, half + 1, device=dev)
    xs = xs.to(dev).view(b, p, 1, 1, 1) + off.view(1, 1, 1, NHOOD_SIZE, 1)  # desc axis 2 <- x
    ys = ys.to(dev).view(b, p, 1, 1, 1) + off.view(1, 1, 1, 1, NHOOD_SIZE)  # desc axis 3 <- y
    img = torch.arange(b, device=dev).view(b, 1, 1, 1, 1)
    chan = torch.arange(c, device=dev).view(1, 1, c, 1, 1)
    idx = ((img * c + chan) * s + ys) * s + xs  # [B, P, C, 7, 7]
    return level.reshape(-1)[idx.reshape(-1)].view(b * p, c, NHOOD_SIZE, NHOOD_SIZE)


class _ChannelMoments:
    """Running per-channel sums of descriptor values and squares (float64), filled while extracting.

    The official finalize_descriptors normalizes every level with np.mean / np.std over axes (0, 2, 3)
    of the whole set; accumulating while the batch is in cache avoids two extra passes over the set.
    """

    def __init__(self, device: torch.device):
        self.count = 0
        self.s1 = torch.zeros(3, dtype=torch.float64, device=device)
        self.s2 = torch.zeros(3, dtype=torch.float64, device=device)

    def add(self, desc: torch.Tensor) -> None:
        flat = desc.reshape(desc.shape[0], DESCRIPTOR_DIM)  # [m, 147]
        ones = flat.new_ones(1, flat.shape[0])
        self.s1 += (ones @ flat).view(3, -1).sum(dim=1, dtype=torch.float64)
        self.s2 += (ones @ flat.square()).view(3, -1).sum(dim=1, dtype=torch.float64)
        self.count += flat.shape[0] * NHOOD_SIZE * NHOOD_SIZE

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
    so the raw descriptors never need a normalized copy.
    """
    per_comp = NHOOD_SIZE * NHOOD_SIZE
    inv = (1.0 / std).repeat_interleave(per_comp).to(directions.device)  # [147], channel-major like the descriptor
    w = (directions.double() * inv.view(-1, 1)).float()  # [147, D]
    shift = (w.double() * mean.repeat_interleave(per_comp).to(directions.device).view(-1, 1)).sum(dim=0)
    return w.t().contiguous(), shift


def _w1_sorted_sums(pa: torch.Tensor, pb: torch.Tensor, sa: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    """sum_i |a_(i) - b_(i)| per row of [c, n] projections (minus shifts), by sorting: the official way, fast on GPU."""
    a = (pa - sa.float().view(-1, 1)).sort(dim=1).values
    b = (pb - sb.float().view(-1, 1)).sort(dim=1).values
    return (a - b).abs().sum(dim=1, dtype=torch.float64)


BUCKET_ROWS = 2  # directions per pass of the bucket kernel: keeps its scratch in cache
ELEMENTS_PER_BUCKET = 8  # average bucket occupancy of the first pass
REFINE = 16  # sub-buckets per undecided bucket in each refinement round
EXACT_BELOW = 4096  # undecided elements left for a plain sort


class _BucketBuffers:
    """Scratch memory reused across direction chunks (fresh allocations page-fault and dominate on CPU)."""

    def __init__(self, rows: int, n: int, device: torch.device):
        self.n = n
        self.size = 2 * rows * n
        self.u = torch.empty(self.size, dtype=torch.float32, device=device)
        self.idx = torch.empty(self.size, dtype=torch.int32, device=device)
        self.flag = torch.empty(self.size, dtype=torch.uint8, device=device)

    def views(self, c: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = 2 * c * self.n
        shape = (2, c, self.n)
        return self.u[:m].view(shape), self.idx[:m].view(shape), self.flag[:m].view(shape)


def _bucket_step(
    counts: torch.Tensor, fracs: torch.Tensor, d0: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the bucket integral for groups of consecutive buckets.

    ``counts``/``fracs``: [2, groups, buckets] element counts and sums of in-bucket positions for the two
    sets; ``d0``: G at each group's lower edge (None: 0). Returns the integral of |G| over the buckets where
    G keeps its sign ([groups], in bucket widths), the undecided-bucket mask and G at every lower edge.
    """
    ca, cb = counts[0], counts[1]
    net = ca - cb
    d = net.cumsum(dim=1) - net  # G at the lower edge of each bucket
    if d0 is not None:
        d = d + d0.view(-1, 1)
    pos = d >= cb  # G >= 0 across the bucket
    neg = d <= -ca  # G <= 0 across the bucket
    sign = pos.double() - (neg & ~pos).double()
    # Integral of G over a bucket: d + sum_a (1 - frac_a) - sum_b (1 - frac_b).
    total = (sign * ((d + net).double() - (fracs[0] - fracs[1]))).sum(dim=1)
    return total, ~(pos | neg), d


def _integrate_groups(
    group: torch.Tensor, pos: torch.Tensor, label: torch.Tensor, d0: torch.Tensor, groups: int, depth: int = 0
) -> torch.Tensor:
    """Integral over [0, 1] of |G| per group: G starts at ``d0[g]`` and steps by ``label`` (+1 or -1) at
    each element's position ``pos`` (float64 in [0, 1]). Refines into sub-buckets while that pays off."""
    if group.numel() <= EXACT_BELOW or depth >= 4:
        return _integrate_sorted(group, pos, label, d0, groups)
    sub = (pos * REFINE).floor().clamp_(max=REFINE - 1)
    frac = pos * REFINE - sub
    key = group * REFINE + sub.long()
    second = (label < 0).long() * (groups * REFINE)
    counts = torch.bincount(key + second, minlength=2 * groups * REFINE).view(2, groups, REFINE)
    fracs = torch.bincount(key + second, weights=frac, minlength=2 * groups * REFINE).view(2, groups, REFINE)
    total, undecided, d = _bucket_step(counts, fracs, d0)
    total = total / REFINE
    flat = undecided.view(-1)
    if bool(flat.any()):
        ids = flat.long().cumsum(0) - 1  # compact numbering of the undecided sub-buckets
        keep = flat[key]
        inner = _integrate_groups(ids[key[keep]], frac[keep], label[keep], d.reshape(-1)[flat], int(ids[-1]) + 1, depth + 1)
        total.index_add_(0, flat.nonzero().squeeze(1) // REFINE, inner / REFINE)
    return total


def _integrate_sorted(
    group: torch.Tensor, pos: torch.Tensor, label: torch.Tensor, d0: torch.Tensor, groups: int
) -> torch.Tensor:
    """The same integral by sorting each group's elements and summing |G| over the gaps between them."""
    order = torch.argsort(group.double() * 2.0 + pos)  # groups apart, then position (exact in float64)
    group, pos, label = group[order], pos[order], label[order]
    start = torch.ones_like(group, dtype=torch.bool)
    start[1:] = group[1:] != group[:-1]
    end = torch.ones_like(start)
    end[:-1] = start[1:]
    cs = label.cumsum(0)
    before = (cs - label)[start][start.long().cumsum(0) - 1]
    g0 = d0[group]
    level = g0 + cs - before  # G just after each element
    nxt = torch.empty_like(pos)
    nxt[:-1] = pos[1:]
    nxt[end] = 1.0
    out = torch.zeros(groups, dtype=torch.float64, device=pos.device)
    out.index_add_(0, group, level.abs().double() * (nxt - pos))
    out.index_add_(0, group[start], g0[start].abs().double() * pos[start])
    return out


def _w1_bucket_sums(
    pa: torch.Tensor, pb: torch.Tensor, sa: torch.Tensor, sb: torch.Tensor, buf: _BucketBuffers | None = None
) -> torch.Tensor:
    """Exact sum_i |a_(i) - b_(i)| per row, a = pa - sa and b = pb - sb ([c, n] and [c]), without sorting.

    For equal-size sets, sum_i |a_(i) - b_(i)| is the integral of |G(t)|, G(t) = #{a <= t} - #{b <= t}.
    Cut each row's value range into K equal buckets. One histogram pass gives the counts per bucket and so
    G at every lower bucket edge (d_k). Where d_k - #b_k >= 0 (or d_k + #a_k <= 0), G keeps its sign across
    the bucket and its integral there is linear in the element positions, so per-bucket sums suffice:
    sign * (d_k + #a_k - #b_k - sum_a frac_a + sum_b frac_b), in bucket widths. Buckets where G may cross
    zero are split into sub-buckets the same way, and the few elements still undecided are sorted. The
    result equals the sorted-difference sum up to float rounding, in a few linear passes instead of sorts.
    """
    c, n = pa.shape
    dev = pa.device
    if buf is None or buf.size < 2 * c * n or buf.n != n:
        buf = _BucketBuffers(c, n, dev)
    u, idx, flag = buf.views(c)
    k = max(1, n // ELEMENTS_PER_BUCKET)
    kb = k + 3  # data in buckets 1..K+1 (the grid origin is rounded down); 0 and K+2 absorb rounding

    # Values a = pa - sa and b = pb - sb, with the shifts rounded to float32 like any float32 normalization.
    torch.sub(pa, sa.float().view(c, 1), out=u[0])
    torch.sub(pb, sb.float().view(c, 1), out=u[1])
    lo = torch.minimum(u[0].amin(dim=1), u[1].amin(dim=1)).double()
    hi = torch.maximum(u[0].amax(dim=1), u[1].amax(dim=1)).double()
    inv32 = torch.where(hi > lo, k / (hi - lo), torch.zeros_like(lo)).float()
    inv = inv32.double()  # the exact scale used below; bucket width = 1 / inv
    origin = torch.floor(lo * inv)  # grid origin on a whole bucket: the added constant is an exact integer
    if bool((origin.abs() > 2**22).any()):
        # Values far from zero relative to their spread: float32 bucket positions would lose precision.
        return _w1_sorted_sums(pa, pb, sa, sb)
    # u = a / width - origin + 1: bucket number in the integer part, position inside it in the fraction.
    # Both sets share the scale and the integer offset, so rounding only adds per-element noise of ~1e-3
    # bucket, the precision of the float32 values themselves.
    u.mul_(inv32.view(1, c, 1)).add_((1.0 - origin).float().view(1, c, 1))
    idx.copy_(u)  # truncation == floor, u > 0
    u.sub_(idx)  # fraction inside the bucket, [0, 1)
    idx.add_((torch.arange(2 * c, device=dev, dtype=torch.int32) * kb).view(2, c, 1))  # (set, row) tables
    flat_idx = idx.view(-1)
    counts = torch.bincount(flat_idx, minlength=2 * c * kb).view(2, c, kb)
    fracs = torch.bincount(flat_idx, weights=u.view(-1), minlength=2 * c * kb).view(2, c, kb).double()
    total, undecided, d = _bucket_step(counts, fracs, None)

    flat = undecided.view(-1)  # [c * kb]: row * kb + bucket
    if bool(flat.any()):
        table = torch.cat([flat, flat]).to(torch.uint8)
        torch.index_select(table, 0, flat_idx, out=flag.view(-1))
        sel = flag.view(-1).nonzero().squeeze(1)
        second = sel >= c * n
        key = flat_idx[sel].long() - second.long() * (c * kb)  # row * kb + bucket
        ids = flat.long().cumsum(0) - 1  # compact numbering of the undecided buckets
        label = 1 - 2 * second.long()  # G steps up at the first set's elements, down at the second's
        inner = _integrate_groups(ids[key], u.view(-1)[sel].double(), label, d.reshape(-1)[flat], int(ids[-1]) + 1)
        total.index_add_(0, flat.nonzero().squeeze(1) // kb, inner)
    return torch.where(inv > 0, total / inv.clamp_min(1e-300), torch.zeros_like(total))


@contextlib.contextmanager
def _full_precision_matmul() -> Iterator[None]:
    # TF32 would change the projections at the 1e-3 level; the official projections are float32 matmuls.
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _resolve_method(method: Method, device: torch.device) -> str:
    if method == "auto":
        return "sort" if device.type == "cuda" else "bucket"
    if method not in ("sort", "bucket"):
        raise SWDError(f"unknown SWD method {method!r}; known: auto, bucket, sort")
    return method


def _level_distance(
    xa: torch.Tensor,
    moments_a: tuple[torch.Tensor, torch.Tensor],
    xb: torch.Tensor,
    moments_b: tuple[torch.Tensor, torch.Tensor],
    directions: torch.Tensor,
    method: Method = "auto",
) -> float:
    """Official sliced_wasserstein on one level: mean over repeats of mean_{i,dir} |a_(i) - b_(i)|.

    ``xa``/``xb``: raw descriptors [N, 147] with their per-channel (mean, std); ``directions``:
    [repeats, 147, dirs]. Projections are made in direction chunks so memory stays ~256 MB per set.
    """
    if xa.shape != xb.shape:
        raise SWDError(f"SWD needs as many descriptors in both sets, got {xa.shape[0]} and {xb.shape[0]}")
    method = _resolve_method(method, xa.device)
    n = xa.shape[0]
    repeats, _, ndirs = directions.shape
    chunk = int(min(ndirs, max(BUCKET_ROWS, (1 << 26) // max(n, 1))))
    buf = _BucketBuffers(BUCKET_ROWS, n, xa.device) if method == "bucket" else None
    per_repeat = []
    with _full_precision_matmul():
        for r in range(repeats):
            wa, sa = _projection(directions[r], *moments_a)
            wb, sb = _projection(directions[r], *moments_b)
            total = torch.zeros((), dtype=torch.float64, device=xa.device)
            for j in range(0, ndirs, chunk):
                pa = torch.mm(wa[j : j + chunk], xa.t())  # [chunk, N]: one direction per row
                pb = torch.mm(wb[j : j + chunk], xb.t())
                if method == "sort":
                    total += _w1_sorted_sums(pa, pb, sa[j : j + chunk], sb[j : j + chunk]).sum()
                    continue
                for i in range(0, pa.shape[0], BUCKET_ROWS):
                    rows = slice(i, i + BUCKET_ROWS)
                    ja = slice(j + i, j + i + BUCKET_ROWS)
                    total += _w1_bucket_sums(pa[rows], pb[rows], sa[ja], sb[ja], buf).sum()
            per_repeat.append(float(total) / (n * ndirs))
    return sum(per_repeat) / len(per_repeat)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor, method: Method = "auto") -> float:
    """Official ``sliced_wasserstein`` for normalized descriptors ``a``, ``b`` [N, 147].

    ``directions``: [repeats, 147, dirs]. Returns the raw distance (not yet x1e3).
    """
    unit = (torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    return _level_distance(a, unit, b, unit, directions.to(a.device), method)


# ----------------------------------------------------------------------------------------------------------
# Streaming metric


class _DescriptorBank:
    """Raw descriptors of one image set, level by level, filled batch by batch, plus channel moments."""

    def __init__(self, levels: list[int], seed: int, stream: int, device: torch.device, storage: torch.device):
        self.levels = levels
        self.seed = seed
        self.stream = stream
        self.device = device
        self.storage = storage
        self.chunks: list[list[torch.Tensor]] = [[] for _ in levels]
        self.moments = [_ChannelMoments(device) for _ in levels]
        self.count = 0

    def update(self, images: torch.Tensor) -> None:
        x = to_rgb_float(images, self.levels[0], self.device)
        xs, ys = patch_positions(self.seed, self.stream, self.count, x.shape[0], self.levels)
        for li, level in enumerate(laplacian_pyramid(x, len(self.levels))):
            desc = extract_descriptors(level, xs[:, li], ys[:, li])
            self.moments[li].add(desc)
            self.chunks[li].append(desc.reshape(desc.shape[0], DESCRIPTOR_DIM).to(self.storage))
        self.count += x.shape[0]

    def level(self, li: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        # Merge the level's chunks once (one copy in memory from then on).
        if len(self.chunks[li]) > 1:
            self.chunks[li] = [torch.cat(self.chunks[li])]
        return self.chunks[li][0].to(self.device), self.moments[li].mean_std()


class SWD:
    """Streaming multi-scale SWD between a real and a generated image set (official units: x1e3).

    >>> swd = SWD(resolution=32, seed=0)
    >>> for batch in real_batches: swd.update_real(batch)    # uint8 [B, 1|3, 32, 32]
    >>> for batch in fake_batches: swd.update_fake(batch)
    >>> swd.compute()   # {"swd_32": ..., "swd_16": ..., "swd_avg": ...}

    Reals can be kept and compared against several fake sets (``reset_fake``). Memory: 128 * 147 floats
    per image and level per set (about 1.2 GB per level for 16,384 images), never the images themselves;
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
            xa, ma = self._real.level(li)
            xb, mb = self._fake.level(li)
            out[f"swd_{res}"] = _level_distance(xa, ma, xb, mb, directions[li], self.method) * 1e3
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
