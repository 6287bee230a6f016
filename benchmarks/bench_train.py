"""Training throughput of one ProGAN stage: images/s, peak memory, achieved GFLOP/s vs the machine's matmul rate.

    python benchmarks/bench_train.py                        # 32x32, minibatch 32, 128 feature maps, CPU, fp32
    python benchmarks/bench_train.py --variants             # also the opt-in faster settings
    python benchmarks/bench_train.py --spec specs/mnist_32.yaml --stage 2 --fading
    python benchmarks/bench_train.py --device cuda --variants

One timed step is exactly the trainer's: a real minibatch (faded when fading), a D step with the
WGAN-GP penalty's double backward, a G step and the G_ema update. FLOPs are counted once with
torch.utils.flop_counter.FlopCounterMode (convolutions and matmuls, forward, backward and the
penalty's double backward); the dense fp32 matmul rate is measured in the same process just before
every timed step, and the ratio reported is the median of the per-step ratios (robust to a shared
machine whose load changes during the run).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from progan_zoo.compiler import compile_spec
from progan_zoo.data import RealLoader, open_dataset
from progan_zoo.train.dist import DistInfo, pick_device
from progan_zoo.train.losses import make_loss
from progan_zoo.train.schedule import Phase
from progan_zoo.train.trainer import Nets, d_step, draw, ema_update, g_step, make_optimizer, real_batch

# 4x4 -> 32x32 RGB, 128 feature maps at every resolution, minibatch 32: the small setting public
# PyTorch ProGAN benchmarks report. The layers and options are the paper's.
BENCH_SPEC = """\
spec_version: 1
name: bench-32
revision: 1
source: "Karras et al. 2018 layers (Table 2 layout), 128 feature maps at every resolution"
license: apache-2.0
architecture:
  latent_size: 128
  image_channels: 3
  resolution: 32
  generator:
    - {resolution: 4, channels: 128}
    - {resolution: 8, channels: 128}
    - {resolution: 16, channels: 128}
    - {resolution: 32, channels: 128}
  discriminator:
    - {resolution: 32, channels: [128, 128]}
    - {resolution: 16, channels: [128, 128]}
    - {resolution: 8, channels: [128, 128]}
    - {resolution: 4, channels: [128, 128]}
training:
  total_kimg: 100
  defaults: {stabilize_kimg: 10, fade_kimg: 10, minibatch: 32, learning_rate: 0.001}
data:
  source: lfw-100
  resolution: 32
  channels: 3
"""


def matmul_gflops(device: torch.device, seconds: float = 1.5) -> float:
    """Dense fp32 matmul rate (GFLOP/s) of this device, TF32 off."""
    n = 2048 if device.type == "cpu" else 8192
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    rates = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(rates) < 3:
        sync(device)
        t = time.perf_counter()
        for _ in range(4 if device.type == "cpu" else 20):
            a @ b
        sync(device)
        rates.append(2 * n ** 3 * (4 if device.type == "cpu" else 20) / (time.perf_counter() - t) / 1e9)
    torch.backends.cuda.matmul.allow_tf32 = prev
    return max(statistics.median(rates), 0.0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _NoModuleTracking:
    """FlopCounterMode's per-module tracker cannot follow autograd.grad on a leaf (the penalty's
    input); count everything under one 'Global' entry instead."""

    parents = {"Global"}
    is_bw = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_variant(args, name: str, amp: bool, channels_last: bool, tf32: bool, device: torch.device) -> dict:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    compiled = compile_spec(args.spec or "bench-32.yaml", text=None if args.spec else BENCH_SPEC)
    spec = compiled.spec
    G, D = compiled.G.to(device), compiled.D.to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    info = DistInfo(device=device)
    nets = Nets(G, D, copy.deepcopy(G).requires_grad_(False), make_optimizer(G, spec, device), make_optimizer(D, spec, device),
                make_loss(spec.training.loss), info, amp=amp, channels_last=channels_last)
    stage = G.num_stages - 1 if args.stage is None else args.stage
    res = G.resolutions[stage]
    batch = args.batch or spec.training.defaults.minibatch
    fading = args.fading and stage > 0
    phase = Phase(kimg=0.0, lod=0.5 if fading else 0.0, stage=stage, alpha=0.5 if fading else 1.0, resolution=res,
                  fading=fading, minibatch=batch, learning_rate=spec.training.defaults.learning_rate)
    images = open_dataset(args.data or spec.data.source, spec.data.resolution, spec.data.channels, progress=False)
    loader = RealLoader(images, seed=0, mirror=False)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        reals = real_batch(loader, phase, nets)
        z, mix = draw(gen, phase, G.z_dim, info, nets.loss.needs_mix)
        d_step(nets, reals, z, mix, phase)
        z, _ = draw(gen, phase, G.z_dim, info, False)
        g_step(nets, z, phase)
        ema_update(nets.G_ema, G, 0.999)

    for _ in range(args.warmup):
        step()
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModuleTracking()
    with counter:
        step()
    flops = counter.get_total_flops()
    sync(device)
    # Each timed step is paired with a matmul measurement taken just before it, so a shared machine
    # whose load changes during the run still gives a fair ratio (the median of the pairs).
    times, ratios, rates = [], [], []
    for _ in range(args.steps):
        rate = matmul_gflops(device, seconds=0.3)
        t = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t)
        rates.append(rate)
        ratios.append(flops / times[-1] / 1e9 / rate)
    dt = statistics.median(times)
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"variant": name, "resolution": res, "stage": stage, "fading": fading, "minibatch": batch,
            "images_per_s": batch / dt, "step_ms": dt * 1000, "gflop_per_step": flops / 1e9,
            "gflops": flops / dt / 1e9, "peak_mem_mib": peak, "paired_ratio": statistics.median(ratios),
            "paired_matmul_gflops": statistics.median(rates),
            "peak_mem_kind": "CUDA allocated" if device.type == "cuda" else "process max RSS"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", help="spec YAML (default: the built-in 32x32, 128-channel, minibatch-32 bench spec)")
    p.add_argument("--data", help="data source (default: the spec's)")
    p.add_argument("--stage", type=int, help="stage index (default: the last)")
    p.add_argument("--fading", action="store_true", help="time the stage while it fades in (alpha 0.5)")
    p.add_argument("--batch", type=int, help="global minibatch (default: the spec's default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--variants", action="store_true", help="also time the opt-in faster settings")
    p.add_argument("--json", action="store_true", help="print one JSON object per variant instead of a table")
    args = p.parse_args(argv)
    device = pick_device(args.device)

    variants = [("fp32 (default, paper-faithful)", False, False, False)]
    if args.variants:
        variants.append(("channels_last", False, True, False))
        if device.type == "cuda":
            variants += [("tf32", False, False, True), ("bf16 autocast", True, False, False),
                         ("bf16 + tf32 + channels_last", True, True, True)]
    before = matmul_gflops(device)
    rows = [run_variant(args, *v, device=device) for v in variants]
    after = matmul_gflops(device)
    ref = max(before, after)
    for r in rows:
        r["matmul_gflops"] = ref
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    r0 = rows[0]
    print(f"device: {name}; torch {torch.__version__}")
    print(f"stage {r0['stage']} ({r0['resolution']}x{r0['resolution']}{', fading' if r0['fading'] else ''}), "
          f"minibatch {r0['minibatch']}, {r0['gflop_per_step']:.2f} GFLOP per training step (D + penalty + G)")
    print(f"dense fp32 matmul: {before:.1f} GFLOP/s before the runs, {after:.1f} after")
    print("'of matmul': median over the timed steps of (step GFLOP/s) / (matmul GFLOP/s measured just before that step)")
    print(f"{'variant':32s} {'img/s':>8s} {'ms/step':>8s} {'GFLOP/s':>8s} {'matmul':>8s} {'of matmul':>9s} {'peak MiB':>9s}")
    for r in rows:
        print(f"{r['variant']:32s} {r['images_per_s']:8.1f} {r['step_ms']:8.1f} {r['gflops']:8.1f} "
              f"{r['paired_matmul_gflops']:8.1f} {100 * r['paired_ratio']:8.1f}% {r['peak_mem_mib']:9.0f}")
    print(f"peak memory: {r0['peak_mem_kind']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
