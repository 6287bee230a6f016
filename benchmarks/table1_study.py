"""The paper's Table 1 at CPU scale: train the CPU twins of the rows (specs/table1/cpu/) with several seeds,
score each with the project's SWD (per pyramid level, x1e3) and MS-SSIM, and write a table and a plot.

    OMP_NUM_THREADS=1 python benchmarks/table1_study.py --seeds 0,1 --out runs/table1-study \\
        --docs docs/table1_study --budget-hours 6

Each (row, seed) trains into OUT/<row>-s<seed>/ and appends one JSON line to OUT/results.jsonl; a run
whose line is there is not trained again, so the study resumes where it stopped. ``--kimg`` shortens
every run (a smoke test); ``--budget-hours`` starts no new run once the wall time is spent, and the
outputs say which runs are missing. The paper's rows (CelebA 128x128, SWD-16k, MS-SSIM of 10,000 pairs)
are a different data set, resolution and length, so only the orderings its text states between rows are
compared, never the values.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CPU_SPECS = REPO / "specs" / "table1" / "cpu"
ROWS = ["a_baseline", "b_progressive", "c_small_minibatch", "d_revised_training",
        "e_star_minibatch_discrimination", "e_minibatch_stddev", "f_equalized_lr", "g_pixelwise_norm", "h_converged"]
LABEL = {"a_baseline": "(a)", "b_progressive": "(b)", "c_small_minibatch": "(c)", "d_revised_training": "(d)",
         "e_star_minibatch_discrimination": "(e*)", "e_minibatch_stddev": "(e)", "f_equalized_lr": "(f)",
         "g_pixelwise_norm": "(g)", "h_converged": "(h)"}

# The paper's Table 1 values are not copied here: they could not be checked against the paper where this
# script was written, and a number typed from memory is no reference. The orderings below are the claims
# the paper's text makes about its rows.


def score(run: Path, num: int, pairs: int, seed: int) -> dict:
    """SWD per level and on average (generated vs real digits) and MS-SSIM of generated pairs, G_ema."""
    import torch

    import progan_zoo
    from progan_zoo.data.builtin import load_builtin
    from progan_zoo.metrics.msssim import ms_ssim_images
    from progan_zoo.metrics.swd import sliced_wasserstein_distance

    G = progan_zoo.load(str(run), device="cpu")
    reals = torch.from_numpy(load_builtin("mnist").copy())                          # [N1HW] uint8
    reals = reals[torch.randperm(reals.shape[0], generator=torch.Generator().manual_seed(0))[:num]]
    fakes = G.sample(num, seed=1000 + seed)                                          # [N1HW] uint8
    if fakes.shape[-1] < reals.shape[-1]:  # a run cut short mid-growth: nearest-upsampled to the final size,
        factor = reals.shape[-1] // fakes.shape[-1]  # as the official networks output every stage
        fakes = fakes.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    swd = sliced_wasserstein_distance(reals, fakes, seed=0, progress=False)
    return {"swd": swd, "msssim": ms_ssim_images(fakes, num_pairs=pairs, seed=0)}


def run_study(args: argparse.Namespace) -> list[dict]:
    """Train and score every (row, seed) not yet in results.jsonl, within the budget."""
    from progan_zoo.train.config import TrainConfig
    from progan_zoo.train.trainer import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    done = {(r["row"], r["seed"]) for r in _read(results_path)}
    start = time.time()
    for seed in args.seeds:  # seed-major: with a short budget every row gets its first seed first
        for row in args.rows:
            if (row, seed) in done:
                continue
            if args.summarize_only:
                continue
            if args.budget_hours and time.time() - start > args.budget_hours * 3600:
                print(f"budget of {args.budget_hours} h spent: {row} seed {seed} and later runs not started", flush=True)
                return _read(results_path)
            run = out / f"{row}-s{seed}"
            t0 = time.time()
            resume = (run / "checkpoints").is_dir()   # a run cut short goes on with its own spec.yaml
            train(TrainConfig(spec=None if resume else str(_spec(row, args.schedule_scale, out)), out=str(run),
                              kimg=args.kimg, seed=seed, device="cpu", progress=False, tensorboard="off", grid=16,
                              resume=str(run) if resume else None))
            train_s = time.time() - t0
            record = {"row": row, "label": LABEL[row], "seed": seed, "kimg": args.kimg,
                      "schedule_scale": args.schedule_scale, "num": args.num,
                      "pairs": args.pairs, "train_s": round(train_s, 1), **score(run, args.num, args.pairs, seed),
                      "score_s": round(time.time() - t0 - train_s, 1), "threads": os.environ.get("OMP_NUM_THREADS")}
            with open(results_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
    return _read(results_path)


def _spec(row: str, scale: float, out: Path) -> Path:
    """The row's CPU twin, or with ``scale`` != 1 a spec extending it whose schedule (every phase and the
    total) is ``scale`` times as long: the same growth, shorter, so a small budget still reaches 32x32."""
    twin = CPU_SPECS / f"{row}.yaml"
    if scale == 1:
        return twin
    from progan_zoo.compiler import load_spec

    tr = load_spec(twin).training
    phases = {k: getattr(tr.defaults, k) * scale for k in ("stabilize_kimg", "fade_kimg")}
    path = out / "specs" / f"{row}-x{scale:g}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {row} with its schedule scaled by {scale:g} (benchmarks/table1_study.py)\n"
                    f"extends: {twin}\nname: {load_spec(twin).name}-x{scale:g}\n"
                    f"training:\n  total_kimg: {tr.total_kimg * scale:g}\n"
                    f"  defaults: {{stabilize_kimg: {phases['stabilize_kimg']:g}, fade_kimg: {phases['fade_kimg']:g}}}\n")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def summarize(results: list[dict], rows: list[str]) -> list[dict]:
    """Per row: mean and spread (min, max) over seeds of each SWD level, the average and MS-SSIM."""
    out = []
    for row in rows:
        rs = sorted((r for r in results if r["row"] == row), key=lambda r: r["seed"])
        if not rs:
            out.append({"row": row, "label": LABEL[row], "seeds": []})
            continue
        keys = sorted((k for k in rs[0]["swd"] if k != "swd_avg"), key=lambda k: -int(k.split("_")[1]))
        per = {k: [r["swd"][k] for r in rs] for k in keys + ["swd_avg"]}
        per["msssim"] = [r["msssim"] for r in rs]
        out.append({"row": row, "label": LABEL[row], "seeds": [r["seed"] for r in rs],
                    "levels": keys, "values": per, "train_s": sum(r["train_s"] for r in rs)})
    return out


def _cell(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    if not values:
        return "not run"
    m = statistics.mean(values) * scale
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f})"


def markdown(summary: list[dict], meta: dict) -> str:
    """The study's table: SWD per level and on average, MS-SSIM, seeds."""
    levels = next((s["levels"] for s in summary if s.get("levels")), [])
    head = ["row"] + [f"SWD {k.split('_')[-1]}" for k in levels] + ["SWD avg", "MS-SSIM", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        v = s.get("values", {})
        cells = [s["label"]] + [_cell(v.get(k, [])) for k in levels] + [
            _cell(v.get("swd_avg", [])), _cell(v.get("msssim", []), digits=4),
            ", ".join(map(str, s["seeds"])) or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    intro = ("The CPU twins of Table 1 (specs/table1/cpu: 32x32 bundled MNIST digits), G_ema of each run: SWD x1e3 "
             f"per level of {meta['num']} generated vs {meta['num']} real images, MS-SSIM of {meta['pairs']} generated "
             "pairs (lower SWD is closer to the data; lower MS-SSIM is more varied). The paper's CelebA values are "
             "not reproduced here (see docs/table1.md); only the orderings its text states are compared.\n\n")
    return intro + "\n".join(lines) + "\n\n" + (
        f"Mean over seeds (min-max in brackets). Settings: {json.dumps(meta)}.\n")


def orderings(summary: list[dict]) -> list[str]:
    """The paper's row-to-row claims (average SWD, CelebA), and whether our seeds agree: in the means
    only (the seeds' ranges overlap, so nothing is established), or with every seed of one row on the
    claimed side of every seed of the other ("separated")."""
    swd = {s["label"]: s["values"]["swd_avg"] for s in summary if s.get("values")}
    claims = [("(b)", "<", "(a)", "progressive growing improves on the baseline"),
              ("(c)", ">", "(b)", "a small minibatch alone hurts"),
              ("(d)", "<", "(c)", "revised training parameters recover"),
              ("(e*)", ">", "(d)", "minibatch discrimination does not help"),
              ("(e)", "<", "(d)", "minibatch stddev helps"),
              ("(f)", "<", "(e)", "equalized learning rate helps"),
              ("(g)", "<", "(f)", "pixelwise normalization helps"),
              ("(h)", "<", "(g)", "a bigger network trained longer helps")]
    out = []
    for a, op, b, what in claims:
        if a not in swd or b not in swd:
            out.append(f"- {a} {op} {b} ({what}): not measured")
            continue
        lo, hi = (swd[a], swd[b]) if op == "<" else (swd[b], swd[a])   # the claim: lo's values below hi's
        held = statistics.mean(lo) < statistics.mean(hi)
        separated = max(lo) < min(hi) if held else min(lo) > max(hi)
        verdict = ("held" if held else "reversed") + (", seeds separated" if separated else
                                                      " in the means only (the seeds' ranges overlap)")
        out.append(f"- {a} {op} {b} ({what}): {verdict} "
                   f"({statistics.mean(swd[a]):.2f} vs {statistics.mean(swd[b]):.2f})")
    return out


def plot(summary: list[dict], path: Path) -> None:
    """Average SWD per row: each seed a dot, the mean a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s["label"] for s in summary]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, s in enumerate(summary):
        vals = s.get("values", {}).get("swd_avg", [])
        if vals:
            ax.bar(i, statistics.mean(vals), color="#9ab", width=0.6)
            ax.plot([i] * len(vals), vals, "o", color="#234", ms=4)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("SWD x1e3 (avg of levels), CPU twins")
    ax.set_title("Table 1 at CPU scale: 32x32 digits; bars = mean over seeds, dots = seeds")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def sample_sheet(summary: list[dict], out: Path, path: Path) -> None:
    """Each row's last sample grid (``G_ema``, the first seed it has), side by side: what the numbers mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    shown = [(s["label"], out / f"{s['row']}-s{s['seeds'][0]}" / "samples" / "latest.png")
             for s in summary if s.get("seeds")]
    shown = [(label, grid) for label, grid in shown if grid.is_file()]
    if not shown:
        return
    fig, axes = plt.subplots(1, len(shown), figsize=(1.6 * len(shown), 1.9), squeeze=False)
    for ax, (label, grid) in zip(axes[0], shown):
        ax.imshow(Image.open(grid), cmap="gray", vmin=0, vmax=255)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (file stems in specs/table1/cpu)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated training seeds (default 0,1)")
    ap.add_argument("--kimg", type=float, default=None, help="train every run this long (default: each spec's total_kimg)")
    ap.add_argument("--schedule-scale", type=float, default=1.0,
                    help="scale every run's schedule (phases and total) by this factor (default 1: the twins' own)")
    ap.add_argument("--num", type=int, default=2048, help="generated and real images for SWD (default 2048)")
    ap.add_argument("--pairs", type=int, default=1000, help="MS-SSIM pairs of generated images (default 1000)")
    ap.add_argument("--out", default="runs/table1-study", help="run directories and results.jsonl")
    ap.add_argument("--docs", default=None,
                    help="write DOCS.md, DOCS.json, DOCS.png and DOCS_samples.png (e.g. docs/table1_study)")
    ap.add_argument("--budget-hours", type=float, default=None, help="start no new run after this wall time")
    ap.add_argument("--summarize-only", action="store_true", help="train nothing: write the outputs from OUT/results.jsonl")
    args = ap.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        print(f"table1_study: unknown row(s) {unknown}; known: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    t0 = time.time()
    results = run_study(args)
    summary = summarize(results, args.rows)
    meta = {"kimg": args.kimg or "each spec's total_kimg", "schedule_scale": args.schedule_scale, "num": args.num, "pairs": args.pairs,
            "seeds": args.seeds, "this_call_wall_s": round(time.time() - t0, 1),
            "train_s_total": round(sum(r["train_s"] for r in results), 1),
            "score_s_total": round(sum(r["score_s"] for r in results), 1)}
    text = markdown(summary, meta) + "\nOrderings of the paper (average SWD, lower is better):\n" + \
        "\n".join(orderings(summary)) + "\n"
    print(text)
    if args.docs:
        base = Path(args.docs)
        base.parent.mkdir(parents=True, exist_ok=True)
        for suffix, body in ((".md", text), (".json", json.dumps({"meta": meta, "results": results}, indent=1) + "\n")):
            tmp = base.with_suffix(suffix + ".tmp")
            tmp.write_text(body)
            os.replace(tmp, base.with_suffix(suffix))
        plot(summary, base.with_suffix(".png"))
        sample_sheet(summary, Path(args.out), base.with_name(base.name + "_samples.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
