"""Projection quality on digits a model never saw, against two baselines: PSNR and SSIM per method.

    python benchmarks/projection_heldout.py mnist-32 --num 100 --steps 300

Sets: ``uci-digits`` (held out: other writers, never seen by the mnist demo) and, for reference, the first
``num`` ``mnist`` digits (seen in training). Methods: projection (``progan_zoo.tools.project``, default
settings but ``steps``), the best of ``--random`` seeded random latents by pixel MSE, and the mean image
of the 5,000 training digits (the best constant guess under MSE). Prints one JSON line per set and
method and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="mnist-32")
    ap.add_argument("--num", type=int, default=100, help="digits per set (default 100)")
    ap.add_argument("--steps", type=int, default=300, help="projection steps (default 300)")
    ap.add_argument("--random", type=int, default=1000, help="random latents of the baseline (default 1000)")
    ap.add_argument("--sets", default="uci-digits,mnist", help="built-in sets to project (default uci-digits,mnist)")
    args = ap.parse_args()

    import progan_zoo
    from progan_zoo.data.builtin import load_builtin
    from progan_zoo.tools.project import ProjectionSettings, best_random_baseline, project, psnr, ssim_u8

    G = progan_zoo.load(args.model, device="cpu")
    train = torch.from_numpy(load_builtin("mnist").copy())
    mean_image = train.double().mean(0, keepdim=True).round().to(torch.uint8)          # [1, 1, 32, 32]
    rows = []
    for name in args.sets.split(","):
        data = torch.from_numpy(load_builtin(name)[: args.num].copy())
        t0 = time.perf_counter()
        proj = project(G, data, ProjectionSettings(steps=args.steps), progress=False).images
        seconds = time.perf_counter() - t0
        for method, images in (("projection", proj), (f"best of {args.random} random latents",
                                                      best_random_baseline(G, data, n=args.random)),
                               ("mean training image", mean_image.expand_as(data))):
            p, s = psnr(images, data), ssim_u8(images, data)
            row = {"set": name, "method": method, "n": data.shape[0], "psnr": float(p.mean()),
                   "psnr_std": float(p.std()), "ssim": float(s.mean()), "ssim_std": float(s.std())}
            if method == "projection":
                row.update(steps=args.steps, seconds=round(seconds, 1), threads=torch.get_num_threads(),
                           cpu=platform.processor() or platform.machine())
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| digits | method | PSNR (dB) | SSIM |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} ({r['n']}) | {r['method']} | {r['psnr']:.2f} ± {r['psnr_std']:.2f} | "
              f"{r['ssim']:.3f} ± {r['ssim_std']:.3f} |")


if __name__ == "__main__":
    main()
