"""SWD against a faithful NumPy statement of the official code (swd_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import swd_reference as ref
from progan_zoo.metrics import descriptors as Dsc
from progan_zoo.metrics import pyramid as P
from progan_zoo.metrics import swd as S
from progan_zoo.metrics import w1 as W


def _blur(x: torch.Tensor, passes: int = 1) -> torch.Tensor:
    y = x.float()
    for _ in range(passes):
        y = P.pyr_up(P.pyr_down(y))
    return y.round().clamp(0, 255).to(torch.uint8)


def _noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x.float() + sigma * torch.randn(x.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)


def _swd(real: torch.Tensor, fake: torch.Tensor, seed: int = 0, batch: int = 32, method: str = "auto") -> dict[str, float]:
    return S.sliced_wasserstein_distance(real, fake, seed=seed, batch_size=batch, method=method)


def test_pyramid_matches_reference() -> None:
    x = np.random.RandomState(0).randint(0, 256, (4, 3, 64, 64)).astype(np.uint8)
    ours = P.laplacian_pyramid(torch.from_numpy(x).float(), 3)
    theirs = ref.laplacian(x, 3)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b, atol=1e-3)


def test_descriptors_match_reference() -> None:
    level = np.random.RandomState(1).rand(3, 3, 32, 32).astype(np.float32)
    xs, ys = Dsc.patch_positions(0, S.STREAM_REAL, 0, 3, [32])
    ours = Dsc.extract_descriptors(torch.from_numpy(level), xs[:, 0], ys[:, 0])
    theirs = ref.descriptors(level, None, xs[:, 0].numpy(), ys[:, 0].numpy())
    np.testing.assert_array_equal(ours.numpy(), theirs)
    assert int(xs.min()) >= 3 and int(xs.max()) <= 28


def test_same_patches_and_directions_as_reference(digits: torch.Tensor) -> None:
    """Fed our patch centres and directions, the official algorithm gives our numbers to float precision."""
    n = 96
    real, fake = digits[:n], _blur(digits[n : 2 * n])
    levels = S.swd_resolutions(32)
    rx, ry = Dsc.patch_positions(7, S.STREAM_REAL, 0, n, levels)
    fx, fy = Dsc.patch_positions(7, S.STREAM_FAKE, 0, n, levels)
    dirs = S.random_directions(7, len(levels)).numpy()
    theirs = ref.reference_swd(real.numpy(), fake.numpy(), positions=(rx.numpy(), ry.numpy(), fx.numpy(), fy.numpy()), directions=dirs)
    ours = _swd(real, fake, seed=7, batch=40)
    print("ours", ours, "reference", theirs)
    np.testing.assert_allclose([ours["swd_32"], ours["swd_16"], ours["swd_avg"]], theirs, rtol=1e-4)


def test_within_reference_spread(digits: torch.Tensor) -> None:
    """With its own random patches and directions the official code scatters; we land inside that scatter."""
    n = 128
    real, fake = digits[:n], _noisy(digits[n : 2 * n], 20.0)
    theirs = np.array([ref.reference_swd(real.numpy(), fake.numpy(), seed=s) for s in range(3)])
    ours = np.array([[v for v in _swd(real, fake, seed=s).values()] for s in range(3)])
    spread = np.sqrt(theirs.std(0) ** 2 + ours.std(0) ** 2) + 1e-9
    print("reference mean/std", theirs.mean(0), theirs.std(0), "ours", ours.mean(0), ours.std(0))
    assert np.all(np.abs(ours.mean(0) - theirs.mean(0)) < 4 * spread + 0.05 * theirs.mean(0))


def _brute_force_level(xa, xb, directions, ma=None, mb=None) -> float:
    """The official per-level formula on expanded, already normalized descriptors, with torch.sort."""
    if ma is not None:
        xa, xb = xa.repeat_interleave(ma.long(), 0), xb.repeat_interleave(mb.long(), 0)
    per_repeat = [(torch.sort(xa.double() @ d.double(), 0).values - torch.sort(xb.double() @ d.double(), 0).values).abs().mean() for d in directions]
    return float(sum(per_repeat) / len(per_repeat))


@pytest.mark.parametrize("ties", [False, True])
def test_level_distance_equals_brute_force(ties: bool) -> None:
    """Row chunks, worker threads and the shift taken out of the sort give the plain sort-and-mean value."""
    g = torch.Generator().manual_seed(3)
    n = 3000
    xa = torch.randn(n, Dsc.DESCRIPTOR_DIM, generator=g)
    xb = torch.randn(n, Dsc.DESCRIPTOR_DIM, generator=g) * 1.2 + 0.3
    if ties:  # many equal values and identical descriptors
        xa, xb = xa.mul(2).round(), xb.mul(2).round()
        xb[:100] = xa[:100]
    dirs = S.random_directions(0, 1)[0][:, :, :70]  # 70: the last chunk of rows is partial
    unit = (torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    expected = _brute_force_level(xa, xb, dirs)
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):  # sequential, and one worker thread per core
            torch.set_num_threads(threads)
            np.testing.assert_allclose(W._level_distance(xa, xb, unit, unit, dirs), expected, rtol=1e-5)
    finally:
        torch.set_num_threads(old)


def test_level_distance_with_multiplicities_and_moments() -> None:
    """Distinct descriptors with counts, normalized through the folded moments, equal the expanded sets."""
    g = torch.Generator().manual_seed(4)
    xa, xb = torch.rand(300, Dsc.DESCRIPTOR_DIM, generator=g) * 50, torch.rand(400, Dsc.DESCRIPTOR_DIM, generator=g) * 40 + 9
    ma = torch.randint(1, 5, (300,), generator=g, dtype=torch.int32)
    mb = torch.ones(400, dtype=torch.int32)
    mb[: int(ma.sum()) - 400] += 1  # equal total weight on both sides
    moments = []
    for x, m in ((xa, ma), (xb, mb)):
        acc = Dsc._ChannelMoments(x.device)
        acc.add(x, m)
        moments.append(acc.mean_std())
    dirs = S.random_directions(1, 1)[0]
    got = W._level_distance(xa, xb, moments[0], moments[1], dirs, mult_a=ma, mult_b=mb)
    norm = [Dsc.finalize_descriptors(x.repeat_interleave(m.long(), 0).view(-1, 3, 7, 7)) for x, m in ((xa, ma), (xb, mb))]
    np.testing.assert_allclose(got, _brute_force_level(norm[0], norm[1], dirs), rtol=1e-5)


def test_deterministic_and_batch_invariant(digits: torch.Tensor) -> None:
    real, fake = digits[:64], _noisy(digits[64:128], 30.0)
    a = _swd(real, fake, seed=5, batch=64)
    again = _swd(real, fake, seed=5, batch=64)
    b = _swd(real, fake, seed=5, batch=7)  # same patches and directions; sums rounded in another order
    c = _swd(real, fake, seed=6, batch=64)
    assert a == again
    np.testing.assert_allclose(list(a.values()), list(b.values()), rtol=1e-6)
    assert abs(a["swd_avg"] - c["swd_avg"]) > 1e-6 * a["swd_avg"]
    assert set(a) == {"swd_32", "swd_16", "swd_avg"}


def test_distance_behaviour(digits: torch.Tensor) -> None:
    real = digits[:128]
    same = _swd(real, real)["swd_avg"]  # different patches of the same images: sampling noise only
    noise_small = _swd(real, _noisy(real, 10.0))["swd_avg"]
    noise_big = _swd(real, _noisy(real, 40.0))["swd_avg"]
    blur = _swd(real, _blur(real, 2))["swd_avg"]
    print(f"identical {same:.2f}, noise 10 {noise_small:.2f}, noise 40 {noise_big:.2f}, blur {blur:.2f}")
    assert same < noise_small < noise_big
    assert blur > 2 * same


def test_noise_floor_and_grey_input(digits: torch.Tensor, faces: torch.Tensor) -> None:
    floor = S.swd_noise_floor(digits[:200])
    across = _swd(digits[:100], faces)
    assert 0 < floor["swd_avg"] < across["swd_avg"]
    rgb = digits[:40].expand(-1, 3, -1, -1).contiguous()
    # Grey sets keep one channel and sum the directions over the three (the official code tiles grey to RGB):
    # the same numbers up to float32 rounding of the projections.
    grey = _swd(digits[:40], digits[40:80])
    np.testing.assert_allclose(list(grey.values()), list(_swd(rgb, digits[40:80].expand(-1, 3, -1, -1)).values()), rtol=1e-6)
    np.testing.assert_allclose(list(grey.values()), list(_swd(rgb, digits[40:80]).values()), rtol=1e-6)


def test_grey_then_rgb_batches_in_one_set(digits: torch.Tensor) -> None:
    """A set fed grey batches, then an RGB one, stores tiled descriptors from then on: the same numbers."""
    real, fake = digits[:48], digits[48:96]
    swd = S.SWD(32, seed=2)
    swd.update_real(real[:32])
    swd.update_real(real[32:].expand(-1, 3, -1, -1))
    swd.update_fake(fake)
    np.testing.assert_allclose(list(swd.compute().values()), list(_swd(real, fake, seed=2).values()), rtol=1e-6)


def test_clear_errors() -> None:
    x = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(S.SWDError, match="uint8"):
        S.SWD(32).update_real(x.float())
    swd = S.SWD(32)
    swd.update_real(x)
    with pytest.raises(S.SWDError, match="equal numbers"):
        swd.compute()
    with pytest.raises(S.SWDError, match="divisible"):
        S.SWD(90)  # 90 -> 45 -> 22: an odd level would have to be halved
    with pytest.raises(S.SWDError, match="32x32"):
        S.SWD(32).update_real(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))


@pytest.mark.slow
def test_within_reference_spread_bigger(digits: torch.Tensor) -> None:
    n = 1000
    real, fake = digits[:n], _blur(digits[n : 2 * n])
    theirs = np.array([ref.reference_swd(real.numpy(), fake.numpy(), seed=s) for s in range(4)])
    ours = np.array([[v for v in _swd(real, fake, seed=s).values()] for s in range(4)])
    spread = np.sqrt(theirs.std(0) ** 2 + ours.std(0) ** 2) + 1e-9
    assert np.all(np.abs(ours.mean(0) - theirs.mean(0)) < 4 * spread)
