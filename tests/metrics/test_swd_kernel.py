"""The optional C kernel (progan_zoo/metrics/_swd_kernel.c) against the sort formula, and SWD with and without it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import torch

from progan_zoo.metrics import descriptors as Dsc
from progan_zoo.metrics import swd as S
from progan_zoo.metrics import w1 as W

kernel = W._KERNEL_MODULE


def _c_compiler() -> str | None:
    """The C compiler an install would build the extension with, if this machine has it."""
    return shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0])


@pytest.fixture
def ext():
    """The built extension: required where a C compiler exists (so parity is never NumPy against itself),
    a skip with the reason where none does (the install then falls back to NumPy by design)."""
    if kernel is None:
        cc = _c_compiler()
        if cc:
            pytest.fail(f"a C compiler ({cc}) is present but progan_zoo.metrics._swd_kernel is not built: "
                        "run pip install -e . to build it")
        pytest.skip("no C compiler on this machine, so the optional SWD kernel cannot be built; "
                    "SWD runs the NumPy path (test_without_the_extension_module)")
    return kernel


def _sorted_formula(a: np.ndarray, b: np.ndarray, ma, mb, sa: float, sb: float) -> float:
    """sum_i |a_(i) - b_(i)| over the expanded, shifted sets, with torch.sort in float64."""
    ea = torch.from_numpy(np.repeat(a, ma) if ma is not None else a).double() - sa
    eb = torch.from_numpy(np.repeat(b, mb) if mb is not None else b).double() - sb
    return float((torch.sort(ea).values - torch.sort(eb).values).abs().sum())


def _kernel_rows(pa: np.ndarray, pb: np.ndarray, ma=None, mb=None, sa=None, sb=None) -> np.ndarray:
    rows = pa.shape[0]
    sa = np.zeros(rows) if sa is None else sa
    sb = np.zeros(rows) if sb is None else sb
    out = np.empty(rows)
    kernel.w1_rows(rows, pa.shape[1], pb.shape[1], pa, pb, ma if ma is not None else b"", mb if mb is not None else b"",
                   sa, sb, out, ma is not None, mb is not None)
    return out


def _cases(rng: np.random.RandomState):
    n = 5000
    yield "gaussian", rng.randn(n).astype(np.float32), (rng.randn(n) * 1.3 + 0.2).astype(np.float32)
    yield "ties", np.round(rng.randn(n) * 3).astype(np.float32), np.round(rng.randn(n) * 3 + 0.5).astype(np.float32)
    same = rng.randn(n).astype(np.float32)
    yield "identical", same, same.copy()
    yield "shuffled", same, rng.permutation(same)
    peaked = rng.randn(n).astype(np.float32) * 0.01
    peaked[: n // 3] = 0.0  # a third exactly 0 (flat patches), the rest crowded around it
    yield "peaked", peaked, rng.permutation(peaked) + np.float32(1e-3)
    yield "constant_same", np.full(n, 2.5, np.float32), np.full(n, 2.5, np.float32)
    yield "constant_apart", np.full(n, 2.5, np.float32), np.full(n, -1.0, np.float32)
    yield "outliers", np.concatenate([rng.randn(n - 2), [1e4, -1e4]]).astype(np.float32), rng.randn(n).astype(np.float32)
    yield "tiny", np.float32([1.0, 3.0]), np.float32([2.0, 2.0])


@pytest.mark.parametrize("shifted", [False, True])
def test_kernel_equals_sort_formula(ext, shifted: bool) -> None:
    rng = np.random.RandomState(0)
    for name, a, b in _cases(rng):
        sa, sb = (0.37, -1.25) if shifted else (0.0, 0.0)
        got = _kernel_rows(a[None], b[None], sa=np.array([sa]), sb=np.array([sb]))[0]
        want = _sorted_formula(a, b, None, None, sa, sb)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9), name


def test_kernel_with_multiplicities_and_several_rows(ext) -> None:
    rng = np.random.RandomState(1)
    ma = rng.randint(1, 6, 3000).astype(np.int32)
    total = int(ma.sum())
    mb = np.ones(total - 1000, np.int32)
    mb[:1000] += 1  # other sizes, the same total weight
    rows = 5
    pa = np.round(rng.randn(rows, ma.size) * 4).astype(np.float32)  # many ties too
    pb = (rng.randn(rows, mb.size) * 4 + 0.3).astype(np.float32)
    pb[2] = pb[2].round()
    sa, sb = rng.randn(rows), rng.randn(rows)
    got = _kernel_rows(pa, pb, ma, mb, sa, sb)
    want = [_sorted_formula(pa[r], pb[r], ma, mb, sa[r], sb[r]) for r in range(rows)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    only_a = _kernel_rows(np.ascontiguousarray(pa[:, :100]), np.ascontiguousarray(pb[:, :int(ma[:100].sum())]), np.ascontiguousarray(ma[:100]))
    want_a = [_sorted_formula(pa[r, :100], pb[r, :int(ma[:100].sum())], ma[:100], None, 0.0, 0.0) for r in range(rows)]
    np.testing.assert_allclose(only_a, want_a, rtol=1e-9)


def test_kernel_rejects_bad_buffers(ext) -> None:
    a = np.zeros((2, 10), np.float32)
    with pytest.raises(ValueError, match="same total weight"):
        _kernel_rows(a, a, ma=np.full(10, 2, np.int32))
    with pytest.raises(ValueError, match="buffer sizes"):
        kernel.w1_rows(2, 10, 9, a, a, b"", b"", np.zeros(2), np.zeros(2), np.empty(2), False, False)


@pytest.mark.parametrize("use_kernel", [True, False])
def test_level_distance_with_and_without_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                                                use_kernel: bool) -> None:
    """Distinct descriptors with counts give the expanded sets' distance on both paths."""
    if use_kernel:
        request.getfixturevalue("ext")
    monkeypatch.setattr(W, "KERNEL", use_kernel)
    g = torch.Generator().manual_seed(5)
    xa = torch.randn(400, Dsc.DESCRIPTOR_DIM, generator=g).mul(2).round()
    xb = torch.randn(500, Dsc.DESCRIPTOR_DIM, generator=g) * 1.1 + 0.2
    ma = torch.randint(1, 4, (400,), generator=g, dtype=torch.int32)
    mb = torch.ones(500, dtype=torch.int32)
    mb[: int(ma.sum()) - 500] += 1
    unit = (torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    dirs = S.random_directions(3, 1)[0][:, :, :40]
    got = W._level_distance(xa, xb, unit, unit, dirs, mult_a=ma, mult_b=mb)
    ea, eb = xa.repeat_interleave(ma.long(), 0), xb.repeat_interleave(mb.long(), 0)
    want = sum(float((torch.sort(ea.double() @ d.double(), 0).values - torch.sort(eb.double() @ d.double(), 0).values).abs().mean()) for d in dirs) / len(dirs)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_swd_same_numbers_with_and_without_kernel(ext, monkeypatch: pytest.MonkeyPatch, digits: torch.Tensor) -> None:
    """The whole metric (the 16x16 level has repeated patches) agrees on both paths to float rounding."""
    real, fake = digits[:48], digits[48:96]
    monkeypatch.setattr(W, "KERNEL", False)
    without = S.sliced_wasserstein_distance(real, fake, seed=1, batch_size=48)
    monkeypatch.setattr(W, "KERNEL", True)
    with_kernel = S.sliced_wasserstein_distance(real, fake, seed=1, batch_size=48)
    np.testing.assert_allclose(list(with_kernel.values()), list(without.values()), rtol=1e-6)


def test_l1_rows_equals_numpy(ext) -> None:
    rng = np.random.RandomState(2)
    a, b = np.sort(rng.randn(3, 1001).astype(np.float32), 1), np.sort(rng.randn(3, 1001).astype(np.float32), 1)
    delta = rng.randn(3)
    out = np.empty(3)
    kernel.l1_rows(3, 1001, a, b, delta, out)
    np.testing.assert_allclose(out, np.abs(a.astype(np.float64) - b - delta[:, None]).sum(1), rtol=1e-12)
    with pytest.raises(ValueError, match="buffer sizes"):
        kernel.l1_rows(3, 1000, a, b, delta, out)


def test_without_the_extension_module() -> None:
    """With the extension missing (no compiler at install time), SWD runs the NumPy path with the same numbers."""
    code = (
        "import sys, torch; sys.modules['progan_zoo.metrics._swd_kernel'] = None\n"
        "from progan_zoo.metrics import swd as S, w1 as W\n"
        "assert W._KERNEL_MODULE is None and not W.KERNEL\n"
        "g = torch.Generator().manual_seed(0)\n"
        "x = (torch.rand(40, 1, 16, 16, generator=g) * 255).to(torch.uint8)\n"
        "print(repr(S.sliced_wasserstein_distance(x[:20], x[20:], seed=3)['swd_16']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 1, 16, 16, generator=g) * 255).to(torch.uint8)
    assert float(out) == pytest.approx(S.sliced_wasserstein_distance(x[:20], x[20:], seed=3)["swd_16"], rel=1e-6)


def test_allocation_failure_is_a_memory_error_not_a_crash(ext) -> None:
    """When the kernel's scratch cannot be allocated it raises MemoryError once and frees each block once
    (it used to free them twice: a glibc abort). The address space is capped in a child process so the
    large scratch allocations fail while the small ones succeed."""
    code = (
        "import importlib.util, resource, sys, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('_swd_kernel', {ext.__file__!r})\n"
        "k = importlib.util.module_from_spec(spec); spec.loader.exec_module(k)\n"
        "n = 4_000_000\n"
        "a = np.zeros((1, n), np.float32); s = np.zeros(1); out = np.empty(1)\n"
        "vm = int([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmSize')][0]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + (64 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))\n"
        "try:\n"
        "    k.w1_rows(1, n, n, a, a, b'', b'', s, s, out, False, False)\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.strip() == "MemoryError"


def test_sets_extracted_in_parallel_give_the_same_numbers(digits: torch.Tensor) -> None:
    """Two torch threads: the fakes are extracted in a second thread; numbers and thread count unchanged."""
    real, fake = digits[:40], digits[40:80]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        sequential = S.sliced_wasserstein_distance(real, fake, seed=4, batch_size=16)
        torch.set_num_threads(2)
        parallel = S.sliced_wasserstein_distance(real, fake, seed=4, batch_size=16)
        assert torch.get_num_threads() == 2
        with pytest.raises(S.SWDError, match="set up for 32x32"):
            S.sliced_wasserstein_distance(real, digits[:8, :, :16, :16], seed=4)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)
    np.testing.assert_allclose(list(parallel.values()), list(sequential.values()), rtol=1e-12)
