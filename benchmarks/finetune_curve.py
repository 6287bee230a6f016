"""Fine-tuning against training from scratch at equal images shown (issue 22): the curve in docs/training.md.

    python benchmarks/finetune_curve.py --out /tmp/ft                # both runs, then the figure (CPU: ~40 min)
    python benchmarks/finetune_curve.py --out /tmp/ft --plot-only     # redraw from the runs already there

Both runs use the shipped ``mnist-32`` spec on the built-in ``lfw-100`` faces (greyscale, a domain the
digit model never saw) for ``--kimg`` thousand images, through the real ``progan-zoo train`` command:
``ft`` starts from the shipped ``mnist-32`` model (``--init-from mnist-32``: its G_ema, at its 32x32
stage; the folder has no D, so D starts fresh), ``scratch`` from a fresh initialisation, growing from
4x4 as the spec's schedule says. SWD (x1e3, average over the Laplacian levels) against the 100 faces
is measured in training every tick (``--metrics swd --metrics-num 100``), G_ema at its current stage
shown at 32x32. The figure plots both curves; the JSON holds every point.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def train(out: Path, kimg: float, init_from: str | None) -> None:
    cmd = [sys.executable, "-m", "progan_zoo", "train", "mnist-32", "--data", "lfw-100", "--kimg", str(kimg),
           "--tick-kimg", "1", "--metrics", "swd", "--metrics-ticks", "1", "--metrics-num", "100",
           "--no-progress", "--grid", "16", "--tensorboard", "off", "--out", str(out)]
    if init_from:
        cmd += ["--init-from", init_from]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    subprocess.run(cmd, check=True, env=env)


def curve(run: Path) -> list[tuple[float, float, int]]:
    """(kimg, swd_avg, resolution) of every tick with an SWD."""
    out = []
    for line in (run / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "metrics/swd_avg" in rec:
            out.append((rec["kimg"], rec["metrics/swd_avg"], rec["resolution"]))
    return out


def plot(curves: dict[str, list[tuple[float, float, int]]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    for label, pts in curves.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=label)
        # Where a run's resolution changes (the scratch run grows; its 4x4 and 8x8 output is shown upsampled).
        for i, (k, v, r) in enumerate(pts):
            if i == 0 or r != pts[i - 1][2]:
                ax.annotate(f"{r}px", (k, v), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center")
    ax.set_xlabel("thousands of real images shown in this run (kimg)")
    ax.set_ylabel("SWD x1e3 vs lfw-100 (avg)")
    ax.set_title("mnist-32 on faces: fine-tuned vs from scratch")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the two runs")
    p.add_argument("--kimg", type=float, default=40.0, help="images per run, in thousands (default 40)")
    p.add_argument("--plot-only", action="store_true", help="only redraw from runs already in --out")
    p.add_argument("--png", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "finetune_mnist32_lfw.png")
    args = p.parse_args()
    runs = {"fine-tuned from mnist-32": args.out / "ft", "from scratch": args.out / "scratch"}
    if not args.plot_only:
        train(runs["fine-tuned from mnist-32"], args.kimg, "mnist-32")
        train(runs["from scratch"], args.kimg, None)
    curves = {label: curve(run) for label, run in runs.items()}
    plot(curves, args.png)
    print(json.dumps({label: [{"kimg": k, "swd_avg": round(v, 2), "resolution": r} for k, v, r in pts]
                      for label, pts in curves.items()}, indent=1))
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
