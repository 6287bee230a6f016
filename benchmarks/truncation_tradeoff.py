"""The truncation trick's quality/variety trade-off for a zoo model: SWD and MS-SSIM against psi.

    python benchmarks/truncation_tradeoff.py mnist-32 --num 2000 --pairs 1000 --out docs/truncation_mnist32.png

For each psi: ``num`` samples (seed 0, ``truncation=psi``) scored by the project's SWD against ``num``
real images of the model's dataset (lower = closer to the data: quality and coverage together), and
the mean MS-SSIM of ``pairs`` sample pairs (higher = less varied; the reals' value is drawn as a line).
Prints one JSON line per psi and writes a two-panel figure (needs matplotlib: the ``plots`` extra).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="mnist-32")
    ap.add_argument("--psi", default="0.25,0.5,0.75,1,1.5,2,inf", help="comma-separated psi values (inf = off)")
    ap.add_argument("--num", type=int, default=2000, help="images per SWD set (default 2000)")
    ap.add_argument("--pairs", type=int, default=1000, help="MS-SSIM pairs (default 1000)")
    ap.add_argument("--data", default="mnist", help="real data: a built-in dataset name (default mnist)")
    ap.add_argument("--out", default=None, help="PNG figure to write")
    args = ap.parse_args()

    import progan_zoo
    from progan_zoo.metrics.msssim import ms_ssim_images
    from progan_zoo.data.builtin import load_builtin
    from progan_zoo.metrics.swd import sliced_wasserstein_distance

    G = progan_zoo.load(args.model, device="cpu")
    reals = torch.from_numpy(load_builtin(args.data).copy())                  # [N1HW] uint8
    reals = reals[torch.randperm(reals.shape[0], generator=torch.Generator().manual_seed(0))[: args.num]]
    real_msssim = ms_ssim_images(reals, num_pairs=args.pairs, seed=0)
    rows = []
    for text in args.psi.split(","):
        psi = float(text)
        t0 = time.perf_counter()
        fakes = G.sample(args.num, seed=0, truncation=None if math.isinf(psi) else psi)
        swd = sliced_wasserstein_distance(reals, fakes, seed=0, progress=False)
        msssim = ms_ssim_images(fakes, num_pairs=args.pairs, seed=0)
        row = {"psi": psi, "swd_avg": swd["swd_avg"], **{k: v for k, v in swd.items() if k != "swd_avg"},
               "msssim": msssim, "real_msssim": real_msssim, "num": args.num, "pairs": args.pairs,
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        finite = [r for r in rows if not math.isinf(r["psi"])]
        off = [r for r in rows if math.isinf(r["psi"])]
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, key, label in ((a, "swd_avg", "SWD x1e3 vs real (lower = closer to data)"),
                               (b, "msssim", "MS-SSIM of sample pairs (higher = less varied)")):
            ax.plot([r["psi"] for r in finite], [r[key] for r in finite], "o-", label="truncated")
            if off:
                ax.axhline(off[0][key], color="grey", ls="--", label="no truncation")
            if key == "msssim":
                ax.axhline(real_msssim, color="green", ls=":", label="real digits")
            ax.set_xlabel("psi (|z_i| > psi redrawn inside [-psi, psi])")
            ax.set_title(label, fontsize=9)
            ax.legend(fontsize=8)
        fig.suptitle(f"{G.name}: truncation trade-off ({args.num} samples, {args.pairs} pairs, seed 0)", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
