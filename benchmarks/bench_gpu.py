"""GPU training throughput: img/s and peak memory for each network, minibatch and precision mode, and the
projected wall time of the whole CelebA-HQ schedule on 8 GPUs. One process, about 4-8 minutes on one
H100/H200; nothing is written but the printout.

    python benchmarks/bench_gpu.py                        # the whole table on the first CUDA device
    python benchmarks/bench_gpu.py --dry-run              # CPU, tiny networks and minibatches: checks the script (seconds)
    python benchmarks/bench_gpu.py --nets bench-32 --batches 32 --modes fp32,fp32_graphs --no-project
    python benchmarks/bench_gpu.py --json                 # one JSON line per measurement

Networks: the 32x32 bench net of bench_train.py (128 maps, latent 128) and the CelebA-HQ networks of
specs/celebahq_1024.yaml trained at 128, 256 and 1024 (their stages of that spec, stabilizing).
Modes: fp32 (paper-faithful), tf32 (--tf32), bf16 (--amp bf16), each also with --cuda-graphs (``_graphs``).

One measured step is the trainer's minibatch with d_repeats 1: a real minibatch copied to the device (a
fixed random uint8 batch, so the data loader's CPU time is left out), a D step with the WGAN-GP penalty's
double backward and the drift term, the G_ema update, and a G step on fresh latents. A cell first runs 5
untimed steps (a graphs mode captures after its 3rd), then enough timed steps for ``--seconds``, synchronised
at both ends. Peak memory is torch.cuda.max_memory_allocated over the cell, graph memory pools included. A
cell the cost model (compiler/cost.py) says cannot fit in free memory is skipped ("est. OOM"); a cell
that runs out of memory anyway prints "OOM".

The projection: each CelebA-HQ stage is measured stabilizing at the spec's global minibatch / 8 per GPU;
a fading phase's rate is the stable rate times the cost model's FLOP ratio (stable / fading), and each
phase of the schedule takes its images / (8 x the per-GPU rate). Linear scaling over 8 GPUs is assumed:
the gradient all-reduce is not measured. The official code's figure for comparison: about 2 days on
8 V100 (the paper: about 4 days).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch

from progan_zoo.compiler import compile_spec
from progan_zoo.compiler.cost import spec_cost, stage_cost
from progan_zoo.compiler.cost_report import duration
from progan_zoo.train.dist import DistInfo
from progan_zoo.train.graphs import StaticSteps
from progan_zoo.train.losses import make_loss
from progan_zoo.train.optim import make_optimizer
from progan_zoo.train.schedule import Phase
from progan_zoo.train.steps import Nets, d_step, draw, ema_update, g_step

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import BENCH_SPEC, BY_NAME as TRAIN_MODES, Mode  # noqa: E402

CELEBAHQ = ROOT / "specs" / "celebahq_1024.yaml"
TINY = ROOT / "tests" / "fixtures" / "specs" / "tiny_16.yaml"


# bench_train's modes (one definition of what each flag does), under this script's names: the eager
# fp32 step with --cuda-graphs is bench_train's "cuda_graphs".
MODES = [replace(TRAIN_MODES[src], name=name) for name, src in (
    ("fp32", "fp32"), ("tf32", "tf32"), ("bf16", "bf16"),
    ("fp32_graphs", "cuda_graphs"), ("tf32_graphs", "tf32_graphs"), ("bf16_graphs", "bf16_graphs"))]
BY_NAME = {m.name: m for m in MODES}
# (label, spec path or None for the bench spec, resolution trained)
NETS = {"bench-32": (None, 32), "celebahq-128": (CELEBAHQ, 128), "celebahq-256": (CELEBAHQ, 256),
        "celebahq-1024": (CELEBAHQ, 1024)}


def _compile(path: Path | None):
    return compile_spec("bench-32.yaml", text=BENCH_SPEC) if path is None else compile_spec(str(path))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_steps(mode: Mode) -> int:
    """Untimed steps: a graphs mode runs 3 eager steps, captures, and replays once."""
    return 4 if mode.graphs else 2


def flops_per_image(compiled, resolution: int) -> float:
    """The cost model's training FLOPs per image at ``resolution`` (stabilizing)."""
    stage = compiled.G.resolutions.index(resolution)
    return stage_cost(compiled.graph, compiled.spec, stage, False, 1).train_flops_per_image


def measure(compiled, resolution: int, batch: int, mode: Mode, device: torch.device, seconds: float,
            min_steps: int = 2) -> dict:
    """img/s and peak memory of the trainer's step for one network, minibatch and mode."""
    spec = compiled.spec
    stage = compiled.G.resolutions.index(resolution)
    row = {"spec": spec.name, "resolution": resolution, "minibatch": batch, "mode": mode.name, "flags": mode.flags}
    if device.type == "cuda":
        need = stage_cost(compiled.graph, spec, stage, False, batch).memory_bytes()
        need *= 2 if mode.graphs else 1   # a captured step keeps its activations in the graph's own pool
        free, _ = torch.cuda.mem_get_info(device)
        if need > 0.95 * free:
            return {**row, "status": f"est. OOM ({need / 2**30:.0f} GiB)"}
        torch.backends.cuda.matmul.allow_tf32 = mode.tf32
        torch.backends.cudnn.allow_tf32 = mode.tf32
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    G, D = copy.deepcopy(compiled.G).to(device), copy.deepcopy(compiled.D).to(device)
    info = DistInfo(device=device)
    nets = Nets(G, D, copy.deepcopy(G).requires_grad_(False), make_optimizer(G, spec, device), make_optimizer(D, spec, device),
                make_loss(spec.training.loss), info, amp=mode.amp, final_resolution=spec.architecture.resolution,
                ema_decay=spec.training.g_ema_decay)
    static = StaticSteps(nets, capture=device.type == "cuda") if mode.graphs else None
    phase = Phase(kimg=0.0, lod=0.0, stage=stage, alpha=1.0, resolution=resolution, fading=False, minibatch=batch,
                  learning_rate=spec.training.defaults.learning_rate)
    gen = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (batch, G.image_channels, resolution, resolution), dtype=torch.uint8, generator=gen)
    if device.type == "cuda":
        u8 = u8.pin_memory()

    def step() -> None:
        reals = u8.to(device, non_blocking=True).float().mul_(2.0 / 255.0).sub_(1.0)     # [NCHW], as real_batch
        z, mix = draw(gen, phase, G.z_dim, info, nets.loss.needs_mix, on_device=static is None)   # as Run.minibatch
        if static is not None:
            static.d_step(reals, z, mix, phase)
            z, _ = draw(gen, phase, G.z_dim, info, False, on_device=False)
            static.g_step(z, phase)
        else:
            d_step(nets, reals, z, mix, phase)
            ema_update(nets.G_ema, nets.G, nets.ema_decay)
            z, _ = draw(gen, phase, G.z_dim, info, False)
            g_step(nets, z, phase)

    try:
        for _ in range(warm_steps(mode) - 1):
            step()
        _sync(device)
        t = time.perf_counter()
        step()
        _sync(device)
        n = max(min_steps, min(500, int(seconds / max(time.perf_counter() - t, 1e-6))))
        t = time.perf_counter()
        for _ in range(n):
            step()
        _sync(device)
        dt = (time.perf_counter() - t) / n
        finite = all(torch.isfinite(p).all() for p in G.parameters())
        row.update(status="ok" if finite else "non-finite", images_per_s=batch / dt, step_ms=dt * 1e3, steps=n)
        if device.type == "cuda":
            row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        if static is not None:
            row["captures"] = static.captures
    except torch.OutOfMemoryError:
        row["status"] = "OOM"
    return row


def measure_and_free(*args, **kw) -> dict:
    """``measure``, then the cell's networks, graphs and their memory pools are freed before the next."""
    row = measure(*args, **kw)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return row


def project(compiled, rates: dict[int, float], gpus: int = 8) -> tuple[float, list[tuple[str, float, float, float]]]:
    """Wall time of the spec's whole schedule on ``gpus`` from per-GPU stable img/s by resolution:
    (seconds, [(phase label, kimg, img/s over all GPUs, seconds)])."""
    cost = spec_cost(compiled.graph, compiled.spec)
    stable = {c.resolution: c for c in cost.stages if not c.fading}
    total, rows = 0.0, []
    for p in cost.phases:
        r = rates[p.cost.resolution] * stable[p.cost.resolution].train_flops_per_image / p.cost.train_flops_per_image
        sec = p.images / (gpus * r)
        total += sec
        rows.append((p.cost.label, p.images / 1000.0, gpus * r, sec))
    return total, rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny networks and minibatches: check the script end to end")
    p.add_argument("--nets", default=",".join(NETS), help=f"comma-separated (default: all of {', '.join(NETS)})")
    p.add_argument("--batches", default="32,256", help="comma-separated minibatches (default: 32,256)")
    p.add_argument("--modes", default=",".join(BY_NAME), help=f"comma-separated (default: all of {', '.join(BY_NAME)})")
    p.add_argument("--project-modes", default="fp32,tf32_graphs,bf16_graphs",
                   help="modes whose per-stage rates give the 8-GPU CelebA-HQ projection (default: fp32,tf32_graphs,bf16_graphs)")
    p.add_argument("--no-project", action="store_true", help="skip the 8-GPU CelebA-HQ projection")
    p.add_argument("--gpus", type=int, default=8, help="GPUs of the projection (default: 8)")
    p.add_argument("--seconds", type=float, default=1.0, help="timed seconds per cell (default: 1)")
    p.add_argument("--budget", type=float, default=400.0,
                   help="seconds of measuring; cells predicted to overrun it are skipped, largest minibatches last (default: 400)")
    p.add_argument("--json", action="store_true", help="one JSON object per measurement instead of tables")
    args = p.parse_args(argv)
    modes = [BY_NAME[m] for m in args.modes.split(",") if m]
    pmodes = [BY_NAME[m] for m in args.project_modes.split(",") if m]
    batches = [int(b) for b in args.batches.split(",") if b]
    if args.dry_run:
        device = torch.device("cpu")
        nets = {"tiny-16": (TINY, 16)}
        batches, seconds, proj_spec = [4, 8], 0.02, TINY
    else:
        if not torch.cuda.is_available():
            print("bench_gpu.py: no CUDA device (hint: --dry-run checks the script on the CPU)", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        unknown = [n for n in args.nets.split(",") if n not in NETS]
        if unknown:
            p.error(f"unknown net(s) {', '.join(unknown)}; known: {', '.join(NETS)}")
        nets = {n: NETS[n] for n in args.nets.split(",")}
        seconds, proj_spec = args.seconds, CELEBAHQ

    def note(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def out(row: dict) -> None:
        if args.json:
            print(json.dumps(row), flush=True)

    def run_projection() -> list[str]:
        """Per-stage rates of the projection modes, and each mode's projected schedule (printable blocks)."""
        c = _compile(proj_spec)
        spec = c.spec
        blocks = []
        for mode in pmodes:
            rates = {}
            for row in spec.architecture.generator:
                mb = next((s.minibatch for s in spec.training.schedule if s.resolution == row.resolution and s.minibatch),
                          spec.training.defaults.minibatch)
                per_gpu = max(mb // args.gpus, 1) if not args.dry_run else mb
                m = cell(c, row.resolution, per_gpu, mode)
                note(f"projection {mode.name} {row.resolution}x{row.resolution} per-GPU batch {per_gpu}: {m['status']} "
                     f"{m.get('images_per_s', 0):.1f} img/s")
                out({"projection": mode.name, **m})
                if m["status"] != "ok":
                    break
                rates[row.resolution] = m["images_per_s"]
            if len(rates) < len(spec.architecture.generator):
                blocks.append(f"\nprojection {mode.name}: not every stage ran; no projection")
                continue
            total, prow = project(c, rates, args.gpus)
            if args.json:
                out({"projection": mode.name, "gpus": args.gpus, "spec": spec.name, "seconds": total})
                continue
            ref = " (official code: about 2 days on 8 V100)" if spec.name == "celebahq-1024" else " (dry run: CPU, tiny net)"
            lines = [f"\nprojected {spec.name} schedule ({spec.training.total_kimg:g} kimg) on {args.gpus} GPUs, "
                     f"{mode.name} (train flags: {mode.flags}): {duration(total)}{ref}",
                     "| phase | kimg | img/s (all GPUs) | time |", "|---|---:|---:|---:|"]
            lines += [f"| {lab} | {kimg:g} | {r:.0f} | {duration(sec)} |" for lab, kimg, r, sec in prow]
            blocks.append("\n".join(lines))
        return blocks

    start = time.time()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    header = f"{date.today().isoformat()}; {name}; torch {torch.__version__}"
    compiled: dict = {}
    achieved: dict[str, float] = {}      # mode -> best FLOP/s so far, to predict a cell's time

    def cell(c, res: int, batch: int, mode: Mode) -> dict:
        """Measure one cell, or skip it when the time budget would not cover it."""
        fpi = flops_per_image(c, res)
        rate = achieved.get(mode.name) or achieved.get("fp32")
        if rate:
            predicted = (warm_steps(mode) + 2) * fpi * batch / rate + seconds
            if time.time() - start + predicted > args.budget:
                return {"spec": c.spec.name, "resolution": res, "minibatch": batch, "mode": mode.name,
                        "flags": mode.flags, "status": f"skipped (time budget, ~{predicted:.0f} s)"}
        row = measure_and_free(c, res, batch, mode, device, seconds)
        if row["status"] == "ok":   # the best rate so far: small cells are launch-bound, large ones are not
            achieved[mode.name] = max(achieved.get(mode.name, 0.0), row["images_per_s"] * fpi)
        return row

    # Minibatch 32 first, then the projection, then the larger minibatches (the slowest cells) while
    # the time budget lasts.
    rows = []
    first = [b for b in batches if b <= 32] or batches[:1]
    rest = [b for b in batches if b not in first]

    def grid(for_batches: list[int]) -> None:
        for label, (path, res) in nets.items():
            if path not in compiled:
                compiled[path] = _compile(path)
            for batch in for_batches:
                for mode in modes:
                    row = {"net": label, **cell(compiled[path], res, batch, mode)}
                    note(f"{label} batch {batch} {mode.name}: {row['status']} "
                         f"{row.get('images_per_s', 0):.1f} img/s {row.get('peak_gib', 0):.2f} GiB")
                    rows.append(row)
                    out(row)

    grid(first)
    projections = [] if args.no_project else run_projection()
    grid(rest)
    if not args.json:
        print(header)
        print(f"\nmeasuring budget {args.budget:.0f} s; {sum(r['status'] == 'ok' for r in rows)} of {len(rows)} cells measured")
        print("\n| net | res | minibatch | mode | train flags | img/s | ms/step | x fp32 | peak GiB |")
        print("|---|---:|---:|---|---|---:|---:|---:|---:|")
        base = {(r["net"], r["minibatch"]): r.get("images_per_s") for r in rows if r["mode"] == "fp32"}
        for r in rows:
            if r["status"] != "ok":
                print(f"| {r['net']} | {r['resolution']} | {r['minibatch']} | {r['mode']} | {r['flags']} | {r['status']} | | | |")
                continue
            b = base.get((r["net"], r["minibatch"]))
            ratio = f"{r['images_per_s'] / b:.2f}" if b else ""
            peak = f"{r['peak_gib']:.2f}" if "peak_gib" in r else ""
            print(f"| {r['net']} | {r['resolution']} | {r['minibatch']} | {r['mode']} | {r['flags']} | "
                  f"{r['images_per_s']:.1f} | {r['step_ms']:.1f} | {ratio} | {peak} |")

    for block in projections:
        print(block)
    note(f"done in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
