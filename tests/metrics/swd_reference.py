"""A faithful NumPy/SciPy re-statement of the official ProGAN SWD (tkarras/progressive_growing_of_gans,
metrics/sliced_wasserstein.py), used as ground truth by the tests and timed by benchmarks/bench_metrics.py.

It follows the official algorithm step by step, including its random-number order: for every minibatch and
every pyramid level one ``randint`` for the x centres then one for the y centres; at the end, for every level
and every repeat one ``randn(147, 128)`` block of directions. The only additions are hooks that accept given
patch centres and directions, so the torch implementation can be checked against it to float precision.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

NHOOD = 7
PER_IMAGE = 128
REPEATS = 4
DIRS = 128

_F1 = np.float32([1, 4, 6, 4, 1])
FILTER_5X5 = np.outer(_F1, _F1) / np.float32(256.0)  # the official gaussian_filter


def pyramid_down(batch: np.ndarray) -> np.ndarray:
    # scipy 'mirror' borders, then every second pixel: cv2.pyrDown
    return scipy.ndimage.convolve(batch, FILTER_5X5[None, None], mode="mirror")[:, :, ::2, ::2]


def pyramid_up(batch: np.ndarray) -> np.ndarray:
    n, c, h, w = batch.shape
    zeros = np.zeros((n, c, 2 * h, 2 * w), batch.dtype)
    zeros[:, :, ::2, ::2] = batch
    return scipy.ndimage.convolve(zeros, FILTER_5X5[None, None] * 4.0, mode="mirror")


def laplacian(batch: np.ndarray, levels: int) -> list[np.ndarray]:
    out = [np.float32(batch)]
    for _ in range(1, levels):
        out.append(pyramid_down(out[-1]))
        out[-2] -= pyramid_up(out[-1])
    return out


def descriptors(level: np.ndarray, rng: np.random.RandomState | None, xs=None, ys=None) -> np.ndarray:
    """Neighbourhoods [N, 3, 7, 7] of one minibatch level; centres drawn from rng (x first) unless given."""
    s = level.shape
    assert s[1] == 3
    n = PER_IMAGE * s[0]
    h = NHOOD // 2
    nh, ch, ox, oy = np.ogrid[0:n, 0:3, -h : h + 1, -h : h + 1]
    img = nh // PER_IMAGE
    if xs is None:
        xs = rng.randint(h, s[3] - h, size=(n, 1, 1, 1))
        ys = rng.randint(h, s[2] - h, size=(n, 1, 1, 1))
    else:
        xs = np.asarray(xs).reshape(n, 1, 1, 1)
        ys = np.asarray(ys).reshape(n, 1, 1, 1)
    flat = ((img * s[1] + ch) * s[2] + (oy + ys)) * s[3] + (ox + xs)
    return level.flat[flat]


def finalize(desc: list[np.ndarray]) -> np.ndarray:
    d = np.concatenate(desc, axis=0)
    d -= np.mean(d, axis=(0, 2, 3), keepdims=True)
    d /= np.std(d, axis=(0, 2, 3), keepdims=True)
    return d.reshape(d.shape[0], -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.RandomState | None, dirs=None) -> float:
    """Mean over repeats of mean |sort(a @ d) - sort(b @ d)|; dirs [repeats, 147, 128] or drawn from rng."""
    results = []
    for r in range(REPEATS):
        if dirs is None:
            d = rng.randn(a.shape[1], DIRS)
            d /= np.sqrt(np.sum(np.square(d), axis=0, keepdims=True))
            d = d.astype(np.float32)
        else:
            d = np.asarray(dirs[r], dtype=np.float32)
        pa = np.sort(np.matmul(a, d), axis=0)
        pb = np.sort(np.matmul(b, d), axis=0)
        results.append(np.mean(np.abs(pa - pb)))
    return float(np.mean(results))


def resolutions(size: int) -> list[int]:
    out = []
    while size >= 16:
        out.append(size)
        size //= 2
    return out


def reference_swd(
    reals: np.ndarray,
    fakes: np.ndarray,
    seed: int = 0,
    minibatch: int = 64,
    positions=None,
    directions=None,
) -> list[float]:
    """Official evaluation of one real and one fake uint8 NCHW set: [swd_res..., swd_avg] (x1e3).

    ``positions``: optional (real_xs, real_ys, fake_xs, fake_ys), each [N, levels, 128];
    ``directions``: optional [levels, repeats, 147, 128]. Without them, one RandomState(seed) plays
    the role of the official global np.random stream.
    """
    rng = np.random.RandomState(seed)
    if reals.shape[1] == 1:
        reals = np.tile(reals, [1, 3, 1, 1])
    if fakes.shape[1] == 1:
        fakes = np.tile(fakes, [1, 3, 1, 1])
    res = resolutions(reals.shape[2])
    sets = []
    for si, images in enumerate((reals, fakes)):
        desc = [[] for _ in res]
        for start in range(0, images.shape[0], minibatch):
            batch = images[start : start + minibatch]
            for li, level in enumerate(laplacian(batch, len(res))):
                if positions is None:
                    desc[li].append(descriptors(level, rng))
                else:
                    xs = positions[2 * si][start : start + minibatch, li]
                    ys = positions[2 * si + 1][start : start + minibatch, li]
                    desc[li].append(descriptors(level, None, xs, ys))
        sets.append([finalize(d) for d in desc])
    dist = []
    for li in range(len(res)):
        dirs = None if directions is None else directions[li]
        dist.append(sliced_wasserstein(sets[0][li], sets[1][li], rng, dirs) * 1e3)
    return dist + [float(np.mean(dist))]
