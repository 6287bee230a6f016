"""Quality gate for the opt-in speed modes: SWD and FID at equal images shown, against the fp32 default's
spread across seeds (issue 11).

    python benchmarks/quality_gate.py                                   # mnist spec, 45 kimg, 2 seeds, 5000 images
    python benchmarks/quality_gate.py --modes fp32,fast,lazy4 --seeds 0,1,2
    python benchmarks/quality_gate.py --spec tests/fixtures/specs/tiny_mnist_16.yaml --kimg 0.5 \\
        --num-images 200 --metrics swd --out /tmp/gate                  # an end-to-end check in a minute

Every mode (names as in ``bench_train.py --list``) trains the spec from scratch for ``--kimg`` thousand
images with each seed, through the real ``progan-zoo train`` command with that mode's flags; each run
is then scored by ``progan-zoo evaluate`` (same real images, ``--num-images`` per side, metric seed 0).
The table gives each mode's mean and per-seed values and the fp32 default's spread. Lower is better
for SWD and FID; a mode passes a metric when its mean is at most the fp32 mean plus the fp32 spread,
where the spread is max(range over seeds, 2 x standard deviation over seeds). With the spec's default
schedule (mnist: 6 kimg per stabilize and fade phase) 45 kimg ends in the 32x32 stage, so SWD covers
both 32x32 and 16x16. FID needs the offline Inception weights (see docs/metrics.md); without them it is
reported as unavailable and only SWD gates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import BY_NAME  # noqa: E402  (the mode table lives with the speed benchmark)

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = {"swd": "swd_avg", "fid": "fid"}


def run(cmd: list[str], log: Path) -> None:
    """Run one progan-zoo command; its output goes to ``log``; a failure stops the gate with the log's tail."""
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if rc != 0:
        tail = log.read_text().splitlines()[-5:]
        raise SystemExit(f"quality_gate: {' '.join(cmd)} failed (exit {rc}); see {log}:\n" + "\n".join(tail))


def train_and_score(args, mode: str, seed: int, out: Path) -> dict:
    """Train one (mode, seed) run and evaluate it; cached in ``out`` so an interrupted gate resumes."""
    run_dir = out / f"{mode}-seed{seed}"
    result_file = run_dir / "gate.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    cli = [sys.executable, "-m", "progan_zoo"]
    t = time.perf_counter()
    run(cli + ["train", args.spec, "--out", str(run_dir), "--kimg", str(args.kimg), "--seed", str(seed),
               "--device", args.device, "--no-progress", "--snapshot-ticks", "1000", "--keep", "1"]
        + BY_NAME[mode].argv(), out / f"{mode}-seed{seed}.train.log")
    train_s = time.perf_counter() - t
    scores = run_dir / "gate-scores.json"
    evaluate = cli + ["evaluate", str(run_dir), "--metrics", ",".join(args.metrics), "--num", str(args.num_images),
                      "--seed", "0", "--device", args.device, "--out", str(scores)]
    if args.data:
        evaluate += ["--data", args.data]
    run(evaluate, out / f"{mode}-seed{seed}.eval.log")
    raw = json.loads(scores.read_text())
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    result = {"mode": mode, "seed": seed, "train_s": train_s, "kimg": log[-1]["kimg"], "resolution": log[-1]["resolution"],
              "images_per_s": statistics.median(r["images_per_s"] for r in log), "scores": {}}
    for metric in args.metrics:
        values = raw.get(metric, {})
        key = HEADLINE.get(metric, metric)
        result["scores"][metric] = values.get(key) if isinstance(values, dict) else None
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def spread(values: list[float]) -> float:
    """The fp32 default's spread across seeds: max(range, 2 x standard deviation)."""
    if len(values) < 2:
        return 0.0
    return max(max(values) - min(values), 2 * statistics.stdev(values))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default="specs/mnist_32.yaml", help="spec to train (default: specs/mnist_32.yaml)")
    p.add_argument("--data", help="real data for training and scoring (default: the spec's)")
    p.add_argument("--kimg", type=float, default=45.0, help="thousands of images shown per run (default 45)")
    p.add_argument("--seeds", default="0,1", help="comma-separated training seeds, at least 2 (default 0,1)")
    p.add_argument("--modes", default="fp32,channels_last,lazy4,shared,fast",
                   help="comma-separated modes from bench_train.py --list; fp32 is always included")
    p.add_argument("--num-images", type=int, default=5000, help="generated (and real) images per metric (default 5000)")
    p.add_argument("--metrics", default="swd,fid", help="comma-separated: swd, fid (default: both)")
    p.add_argument("--device", default="cpu", help="device for training and scoring (default: cpu)")
    p.add_argument("--out", default="runs/quality-gate", help="folder for the runs and results (reused: finished runs are kept)")
    args = p.parse_args(argv)
    args.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in BY_NAME]
    if unknown:
        p.error(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    if len(seeds) < 2:
        p.error("--seeds needs at least 2 seeds (the fp32 spread is measured across seeds)")
    modes = ["fp32"] + [m for m in modes if m != "fp32"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results = {m: [train_and_score(args, m, s, out) for s in seeds] for m in modes}
    (out / "quality_gate.json").write_text(json.dumps(results, indent=2) + "\n")

    base = {metric: [r["scores"][metric] for r in results["fp32"]] for metric in args.metrics}
    print(f"quality gate: {args.spec}, {args.kimg:g} kimg per run, seeds {args.seeds}, {args.num_images} images per metric, "
          f"device {args.device}")
    print(f"pass: mode mean <= fp32 mean + fp32 spread (spread = max(range, 2 x std) over seeds; lower is better)")
    head = " | ".join(f"{HEADLINE.get(m, m)} mean (per seed) | pass" for m in args.metrics)
    print(f"\n| mode | train flags | img/s | {head} |")
    print("|---|---|---:|" + "---|---:|" * len(args.metrics))
    all_pass = True
    for mode in modes:
        cells = []
        for metric in args.metrics:
            vals = [r["scores"][metric] for r in results[mode]]
            if any(v is None for v in vals) or any(v is None for v in base[metric]):
                cells += ["unavailable", "-"]
                continue
            mean, ref, tol = statistics.mean(vals), statistics.mean(base[metric]), spread(base[metric])
            ok = mean <= ref + tol
            all_pass &= ok or mode == "fp32"
            cells += [f"{mean:.3f} ({', '.join(f'{v:.3f}' for v in vals)})",
                      "ref" if mode == "fp32" else ("yes" if ok else "NO")]
        rate = statistics.mean(r["images_per_s"] for r in results[mode])
        flags = " ".join(BY_NAME[mode].argv()) or "(default)"
        print(f"| {mode} | {flags} | {rate:.0f} | " + " | ".join(cells) + " |")
    for metric in args.metrics:
        if all(v is not None for v in base[metric]):
            print(f"fp32 {HEADLINE.get(metric, metric)}: mean {statistics.mean(base[metric]):.3f}, spread {spread(base[metric]):.3f}")
    last = results["fp32"][0]
    print(f"runs end at kimg {last['kimg']} ({last['resolution']}x{last['resolution']}); results: {out / 'quality_gate.json'}")
    print("all opt-in modes pass" if all_pass else "some opt-in mode fails the gate")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
