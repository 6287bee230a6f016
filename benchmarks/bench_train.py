"""Training throughput of one ProGAN stage for every speed mode side by side, from one process.

    python benchmarks/bench_train.py                                   # every mode, 32x32, minibatch 32, 128 maps, CPU
    python benchmarks/bench_train.py --modes fp32,fast                 # a subset (names: --list)
    python benchmarks/bench_train.py --spec specs/mnist_32.yaml --stage 2 --fading
    python benchmarks/bench_train.py --device cuda
    python benchmarks/bench_train.py --device cuda --modes fp32,cuda_graphs,tf32_graphs,bf16_graphs

Modes ending in ``graphs`` run the ``--cuda-graphs`` static steps (progan_zoo/train/graphs.py): each step
kind is captured after three eager warm-up steps and replayed; CUDA only. See benchmarks/bench_gpu.py
for the whole GPU table (networks, minibatches 32 and 256, peak memory, the 8-GPU projection).

One timed minibatch is exactly the trainer's (``Run.minibatch`` with d_repeats 1): a real minibatch
(faded when fading), a D step with the WGAN-GP penalty's double backward (every k-th step under
``--lazy-penalty k``), the G_ema update and a G step. Modes are timed round-robin in blocks of
``--block`` minibatches (a multiple of every lazy k), so a shared machine's changing load hits all
modes alike; each mode's ratio to the fp32 default is the median of the per-round ratios. FLOPs are
counted over one block with torch.utils.flop_counter.FlopCounterMode (convolutions and matmuls,
forward, backward, double backward); "of matmul" divides a mode's achieved GFLOP/s by the dense
matmul rate of the dtype it computes in (fp32, or bf16 under --amp bf16), measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date

import torch

from progan_zoo.compiler import compile_spec
from progan_zoo.data import RealLoader, open_dataset
from progan_zoo.nn.flops import count_flops
from progan_zoo.train.dist import DistInfo, pick_device
from progan_zoo.train.graphs import StaticSteps
from progan_zoo.train.losses import make_loss
from progan_zoo.train.optim import make_optimizer
from progan_zoo.train.schedule import Phase
from progan_zoo.train.steps import Nets, d_step, draw, ema_update, g_step, real_batch

# 4x4 -> 32x32 RGB, 128 feature maps at every resolution, minibatch 32: the small setting public
# PyTorch ProGAN benchmarks report. The layers and options are the paper's.
BENCH_SPEC = """\
spec_version: 2
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


@dataclass(frozen=True)
class Mode:
    """One combination of the trainer's opt-in speed flags (the ``progan-zoo train`` spelling in ``flags``)."""

    name: str
    flags: str
    amp: bool = False
    amp_penalty: bool = False
    channels_last: bool = False
    tf32: bool = False
    lazy_penalty: int = 1
    shared_fakes: bool = False
    graphs: bool = False
    cuda_only: bool = False

    def argv(self) -> list[str]:
        """The ``progan-zoo train`` arguments of this mode."""
        out = ["--amp", "bf16"] if self.amp else []
        out += ["--amp-penalty"] if self.amp_penalty else []
        out += ["--channels-last"] if self.channels_last else []
        out += ["--tf32"] if self.tf32 else []
        out += ["--lazy-penalty", str(self.lazy_penalty)] if self.lazy_penalty > 1 else []
        out += ["--shared-fakes"] if self.shared_fakes else []
        out += ["--cuda-graphs"] if self.graphs else []
        return out


MODES = [
    Mode("fp32", "(default, paper-faithful)"),
    Mode("channels_last", "--channels-last", channels_last=True),
    Mode("lazy4", "--lazy-penalty 4", lazy_penalty=4),
    Mode("lazy8", "--lazy-penalty 8", lazy_penalty=8),
    Mode("shared", "--shared-fakes", shared_fakes=True),
    Mode("fast", "--channels-last --lazy-penalty 4 --shared-fakes", channels_last=True, lazy_penalty=4, shared_fakes=True),
    Mode("fast8", "--channels-last --lazy-penalty 8 --shared-fakes", channels_last=True, lazy_penalty=8, shared_fakes=True),
    Mode("bf16", "--amp bf16", amp=True),
    Mode("bf16_cl", "--amp bf16 --channels-last", amp=True, channels_last=True),
    Mode("bf16_all", "--amp bf16 --amp-penalty --channels-last", amp=True, amp_penalty=True, channels_last=True),
    Mode("tf32", "--tf32", tf32=True, cuda_only=True),
    Mode("tf32_fast", "--tf32 --channels-last --lazy-penalty 4 --shared-fakes", tf32=True, channels_last=True,
         lazy_penalty=4, shared_fakes=True, cuda_only=True),
    Mode("cuda_graphs", "--cuda-graphs", graphs=True, cuda_only=True),
    Mode("tf32_graphs", "--tf32 --cuda-graphs", tf32=True, graphs=True, cuda_only=True),
    Mode("bf16_graphs", "--amp bf16 --cuda-graphs", amp=True, graphs=True, cuda_only=True),
    Mode("fast_graphs", "--tf32 --channels-last --lazy-penalty 4 --cuda-graphs", tf32=True, channels_last=True,
         lazy_penalty=4, graphs=True, cuda_only=True),
]
BY_NAME = {m.name: m for m in MODES}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = 1.0) -> float:
    """Dense matmul rate (GFLOP/s) of ``dtype`` on this device, TF32 off. The size adapts so that a slow
    dtype (bf16 on a CPU without bf16 units runs a reference kernel) still finishes in about ``seconds``."""
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        n = 128
        cap = 2048 if device.type == "cpu" else 8192
        while True:
            a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
            a @ b
            sync(device)
            t = time.perf_counter()
            a @ b
            sync(device)
            dt = time.perf_counter() - t
            if n >= cap or dt * 8 > seconds / 4:
                break
            n *= 2
        rates = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(rates) < 3:
            sync(device)
            t = time.perf_counter()
            a @ b
            sync(device)
            rates.append(2 * n ** 3 / (time.perf_counter() - t) / 1e9)
        return statistics.median(rates)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


class Bench:
    """One mode's networks, data and step function, built like ``Run`` builds them."""

    def __init__(self, args, mode: Mode, device: torch.device, batch: int | None = None) -> None:
        self.mode, self.device = mode, device
        torch.manual_seed(0)
        compiled = compile_spec(args.spec or "bench-32.yaml", text=None if args.spec else BENCH_SPEC)
        spec = compiled.spec
        G, D = compiled.G.to(device), compiled.D.to(device)
        if mode.channels_last:
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        self.info = DistInfo(device=device)
        self.nets = Nets(G, D, copy.deepcopy(G).requires_grad_(False), make_optimizer(G, spec, device),
                         make_optimizer(D, spec, device), make_loss(spec.training.loss), self.info, amp=mode.amp,
                         channels_last=mode.channels_last, final_resolution=spec.architecture.resolution,
                         amp_penalty=mode.amp_penalty, lazy_penalty=mode.lazy_penalty, shared_fakes=mode.shared_fakes)
        stage = G.num_stages - 1 if args.stage is None else args.stage
        batch = batch or args.batch or spec.training.defaults.minibatch
        fading = args.fading and stage > 0
        self.phase = Phase(kimg=0.0, lod=0.5 if fading else 0.0, stage=stage, alpha=0.5 if fading else 1.0,
                           resolution=G.resolutions[stage], fading=fading, minibatch=batch,
                           learning_rate=spec.training.defaults.learning_rate)
        images = open_dataset(args.data or spec.data.source, spec.data.resolution, spec.data.channels, progress=False)
        self.loader = RealLoader(images, seed=0, mirror=False)
        self.gen = torch.Generator().manual_seed(0)
        self.index = 0
        # --cuda-graphs: the trainer's static steps, captured on CUDA (eager elsewhere, e.g. for FLOP counting).
        self.static = StaticSteps(self.nets, capture=device.type == "cuda") if mode.graphs else None

    def _flags(self) -> None:
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.mode.tf32
            torch.backends.cudnn.allow_tf32 = self.mode.tf32
            torch.backends.cudnn.benchmark = True

    def minibatch(self) -> None:
        """``Run.minibatch`` with one D step."""
        n, phase, z_dim = self.nets, self.phase, self.nets.G.z_dim
        reals = real_batch(self.loader, phase, n)
        z, mix = draw(self.gen, phase, z_dim, self.info, n.loss.needs_mix, on_device=self.static is None)
        if self.static is not None:
            self.static.d_step(reals, z, mix, phase, gp_weight=n.penalty_weight(self.index))   # EMA included
            z, _ = draw(self.gen, phase, z_dim, self.info, False, on_device=False)
            self.static.g_step(z, phase)
            self.index += 1
            return
        fakes = None
        if n.shared_fakes:
            with n.autocast():
                fakes = n.fmt(n.G(z, phase.stage, phase.alpha))
        d_step(n, reals, z, mix, phase, gp_weight=n.penalty_weight(self.index), fakes=fakes)
        ema_update(n.G_ema, n.G, n.ema_decay)
        if fakes is None:
            z, _ = draw(self.gen, phase, z_dim, self.info, False)
        g_step(n, z, phase, fakes=fakes)
        self.index += 1

    def block(self, steps: int) -> float:
        """Seconds for ``steps`` minibatches."""
        self._flags()
        sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            self.minibatch()
        sync(self.device)
        return time.perf_counter() - t

    def flops(self, steps: int) -> float:
        """FLOPs per minibatch, averaged over ``steps`` (a whole lazy-penalty cycle)."""
        self._flags()
        if self.static is not None:
            self.static.capture = False   # count the eager static step (a replay dispatches nothing to count)
        def block() -> None:
            for _ in range(steps):
                self.minibatch()

        return count_flops(block) / steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", help="spec YAML (default: the built-in 32x32, 128-channel, minibatch-32 bench spec)")
    p.add_argument("--data", help="data source (default: the spec's)")
    p.add_argument("--stage", type=int, help="stage index (default: the last)")
    p.add_argument("--fading", action="store_true", help="time the stage while it fades in (alpha 0.5)")
    p.add_argument("--batch", type=int, help="global minibatch (default: the spec's default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--modes", help="comma-separated mode names (default: every mode the device runs; see --list)")
    p.add_argument("--list", action="store_true", help="list the modes and their train flags, then exit")
    p.add_argument("--rounds", type=int, default=3, help="round-robin rounds (median reported)")
    p.add_argument("--block", type=int, help="minibatches per timed block (default: the largest lazy k, at least 4)")
    p.add_argument("--warmup", type=int, default=1, help="untimed blocks per mode")
    p.add_argument("--json", action="store_true", help="print one JSON object per mode instead of a table")
    args = p.parse_args(argv)
    if args.list:
        for m in MODES:
            print(f"{m.name:14s} {m.flags}{'  (CUDA only)' if m.cuda_only else ''}")
        return 0
    device = pick_device(args.device)
    if args.modes:
        unknown = [m for m in args.modes.split(",") if m not in BY_NAME]
        if unknown:
            p.error(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
        modes = [BY_NAME[m] for m in args.modes.split(",")]
        if modes[0].name != "fp32":
            modes.insert(0, BY_NAME["fp32"]) if "fp32" not in args.modes.split(",") else None
    else:
        modes = [m for m in MODES if device.type == "cuda" or not m.cuda_only]
    modes = sorted(modes, key=lambda m: m.name != "fp32")  # the reference first
    args.block = args.block or max([4] + [m.lazy_penalty for m in modes])
    for m in modes:
        if args.block % m.lazy_penalty:
            p.error(f"--block {args.block} is not a multiple of mode {m.name}'s lazy penalty interval {m.lazy_penalty}")

    def note(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    rate = {"fp32": matmul_gflops(device, torch.float32)}
    if any(m.amp for m in modes):
        rate["bf16"] = matmul_gflops(device, torch.bfloat16)
    note(f"matmul: {rate}; building {len(modes)} modes")
    benches = [Bench(args, m, device) for m in modes]
    note("counting FLOPs")
    # FLOPs grow linearly with the minibatch: count them on a minibatch of 4 (one minibatch-stddev group).
    small = 4 if benches[0].phase.minibatch % 4 == 0 else benches[0].phase.minibatch
    flops = [Bench(args, m, device, batch=small).flops(args.block) * b.phase.minibatch / small for m, b in zip(modes, benches)]
    note("FLOPs counted; timing")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for b in benches:
        for _ in range(args.warmup):
            b.block(args.block)
    times: list[list[float]] = [[] for _ in benches]
    for k in range(args.rounds):
        for i, b in enumerate(benches):
            times[i].append(b.block(args.block) / args.block)
            print(f"round {k + 1}/{args.rounds} {b.mode.name}: {b.phase.minibatch / times[i][-1]:.1f} img/s",
                  file=sys.stderr, flush=True)
    rows = []
    for m, b, f, t in zip(modes, benches, flops, times):
        dt = statistics.median(t)
        dtype = "bf16" if m.amp else "fp32"
        rows.append({
            "mode": m.name, "flags": m.flags, "resolution": b.phase.resolution, "minibatch": b.phase.minibatch,
            "images_per_s": b.phase.minibatch / dt, "step_ms": dt * 1e3,
            "vs_fp32": statistics.median(t0 / ti for t0, ti in zip(times[0], t)),
            "gflop_per_step": f / 1e9, "gflops": f / dt / 1e9, "matmul_dtype": dtype, "matmul_gflops": rate[dtype],
            "of_matmul": f / dt / 1e9 / rate[dtype],
        })
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    r0, b0 = rows[0], benches[0]
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"{date.today().isoformat()}; {name}; torch {torch.__version__}{load}")
    print(f"stage {b0.phase.stage} ({r0['resolution']}x{r0['resolution']}{', fading' if b0.phase.fading else ''}), "
          f"minibatch {r0['minibatch']}; {args.rounds} rounds of {args.block} minibatches per mode, round-robin")
    print("dense matmul: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rate.items()))
    print()
    print(f"| mode | train flags | img/s | ms/step | x fp32 | GFLOP/step | GFLOP/s | of {'/'.join(rate)} matmul |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['flags']} | {r['images_per_s']:.1f} | {r['step_ms']:.0f} | {r['vs_fp32']:.2f} | "
              f"{r['gflop_per_step']:.2f} | {r['gflops']:.1f} | {100 * r['of_matmul']:.0f}% {r['matmul_dtype']} |")
    if device.type == "cuda":
        print(f"\npeak CUDA memory (all modes): {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")
    else:
        print(f"\nprocess max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    best = max(rows[1:], key=lambda r: r["vs_fp32"], default=None)
    if best:
        print(f"fastest opt-in mode: {best['mode']} ({best['flags']}), {best['vs_fp32']:.2f}x the fp32 default's img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
