"""The progressive training loop (paper section 2; official TF ``train.py``), readable top to bottom.

One iteration, as in the official loop with ``D_repeats`` D steps per G step:

    phase = Schedule(spec).at(kimg)            stage, alpha, minibatch, learning rate from images shown
    D step (x d_repeats): reals faded like G's output; fakes from G; loss (WGAN-GP by default)
    G step: fresh latents through G and D
    G_ema <- lerp(G, G_ema, decay)             the generator used for samples and evaluation
    images shown += minibatch per D step       (the official ``cur_nimg``)

Every random draw of a step (image indices, mirror flips, latents, penalty mixing factors) is made
for the *global* minibatch, on every rank, from generators seeded by ``--seed``; a rank keeps the
samples ``rank, rank + W, ...``. So a W-rank run computes what one process would, and a resumed
run continues exactly where the checkpoint left off (bitwise on the CPU).
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from progan_zoo import __version__
from progan_zoo.compiler import compile_spec
from progan_zoo.data import RealLoader, open_dataset
from progan_zoo.errors import UsageError, UserError
from progan_zoo.nn import downsample2x, upsample2x

from . import checkpoint as ckpt_io
from .dist import DistInfo, all_reduce_grads, all_reduce_mean, barrier, broadcast_module, init_distributed, shutdown
from .losses import make_loss
from .samples import make_grid, save_png
from .schedule import Phase, Schedule


@dataclass
class TrainConfig:
    """Options of one training run (the ``progan-zoo train`` flags)."""

    spec: str | None = None           # Spec file; None with ``resume``: the run's own spec.yaml.
    data: str | None = None           # Built-in name, cache folder, image folder or zip; None: the spec's.
    out: str | None = None            # Run directory; None: runs/<spec name>-<time> (or the resumed run's).
    kimg: float | None = None         # Length in thousands of real images; None: the spec's total_kimg.
    resume: str | None = None         # Run directory or checkpoint folder to continue from.
    seed: int = 0
    device: str = "auto"              # auto | cpu | cuda
    tick_kimg: float | None = None    # Log, sample grid every tick; None: total/30 rounded, at least 1 kimg.
    snapshot_ticks: int = 5           # Checkpoint every this many ticks (and at the end).
    keep: int = 3                     # Newest checkpoints kept.
    grid: int = 64                    # Images in each sample grid.
    mirror: bool | None = None        # Mirror augmentation; None: the spec's mirror_augment.
    amp: str = "none"                 # none | bf16 (autocast on CUDA; the penalty stays fp32)
    tf32: bool = False                # Allow TF32 matmuls and convolutions on CUDA.
    channels_last: bool = False       # NHWC memory format.
    deterministic: bool = False       # torch.use_deterministic_algorithms(True).
    max_steps: int | None = None      # Stop after this many G steps in this process (tests, benchmarks).
    progress: bool = True
    argv: list[str] = field(default_factory=list)


@dataclass
class Nets:
    """What one training step touches."""

    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    loss: object
    dist: DistInfo
    amp: bool = False
    channels_last: bool = False

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


# ------------------------------------------------------------------------------------------------
# One step.

def fade_reals(x: torch.Tensor, phase: Phase) -> torch.Tensor:
    """Official ``process_reals``: lerp(x, upsample(downsample(x)), frac(lod)), i.e. alpha * x +
    (1 - alpha) * the previous resolution's image shown at this size, exactly as G's output fades."""
    if not phase.fading:
        return x
    return torch.lerp(x, upsample2x(downsample2x(x)), 1.0 - phase.alpha)


def real_batch(loader: RealLoader, phase: Phase, nets: Nets) -> torch.Tensor:
    """This rank's share of the next global minibatch of real images, in [-1, 1], faded."""
    info = nets.dist
    u8 = loader.next(phase.resolution, phase.minibatch, info.rank, info.world)     # [NCHW] uint8
    x = torch.from_numpy(u8).to(info.device, non_blocking=True).float()
    x = x.mul_(2.0 / 255.0).sub_(1.0)                                               # official drange [0,255] -> [-1,1]
    return nets.fmt(fade_reals(x, phase))


def draw(gen: torch.Generator, phase: Phase, z_dim: int, info: DistInfo, mix: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents [N, z_dim] (and penalty mixing factors [N]) drawn for the global minibatch, this rank's share."""
    z = torch.randn(phase.minibatch, z_dim, generator=gen)[info.rank::info.world]
    u = torch.rand(phase.minibatch, generator=gen)[info.rank::info.world] if mix else None
    return z.to(info.device), (u.to(info.device) if u is not None else None)


def d_step(nets: Nets, reals: torch.Tensor, z: torch.Tensor, mix: torch.Tensor | None, phase: Phase) -> dict:
    G, D = nets.G, nets.D
    D.requires_grad_(True)
    with torch.no_grad(), nets.autocast():
        fakes = nets.fmt(G(z, phase.stage, phase.alpha).float())                   # [NCHW]
    with nets.autocast():
        loss, stats = nets.loss.d_loss(lambda x: D(x, phase.stage, phase.alpha), reals, fakes, mix)
    nets.opt_D.zero_grad(set_to_none=True)
    loss.backward()
    all_reduce_grads(D.parameters(), nets.dist)
    nets.opt_D.step()
    return stats


def g_step(nets: Nets, z: torch.Tensor, phase: Phase) -> dict:
    G, D = nets.G, nets.D
    D.requires_grad_(False)  # Only G's gradients are needed (the official G_opt covers G's variables).
    with nets.autocast():
        fakes = nets.fmt(G(z, phase.stage, phase.alpha))
        loss, stats = nets.loss.g_loss(lambda x: D(x, phase.stage, phase.alpha), fakes)
    nets.opt_G.zero_grad(set_to_none=True)
    loss.backward()
    all_reduce_grads(G.parameters(), nets.dist)
    nets.opt_G.step()
    D.requires_grad_(True)
    return stats


@torch.no_grad()
def ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, decay: float) -> None:
    """Official ``setup_as_moving_average_of``: ema <- lerp(G, ema, decay) for every weight, every step.
    The fade weight is not averaged: samples use the current alpha (the official copies ``lod`` with beta 0)."""
    ema_p, g_p = list(G_ema.parameters()), list(G.parameters())
    torch._foreach_lerp_(ema_p, g_p, 1.0 - decay)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def lod_crossed(prev: float | None, lod: float) -> bool:
    """The official ``reset_opt_for_new_lod`` trigger: floor or ceil of the level of detail changed
    (a fade starts, or a fade ends)."""
    return prev is not None and (math.floor(prev) != math.floor(lod) or math.ceil(prev) != math.ceil(lod))


# ------------------------------------------------------------------------------------------------
# Setup helpers.

def make_optimizer(module: torch.nn.Module, spec, device: torch.device) -> torch.optim.Adam:
    o = spec.training.optimizer
    return torch.optim.Adam(module.parameters(), lr=spec.training.defaults.learning_rate, betas=(o.beta1, o.beta2),
                            eps=o.eps, foreach=device.type == "cuda")


def check_minibatches(spec, sched: Schedule, world: int) -> None:
    """Every resolution's global minibatch splits evenly over ranks and into minibatch-stddev groups."""
    g = spec.architecture.options.mbstd_group_size
    for res, mb in zip(sched.resolutions, sched.minibatch):
        where = f"training minibatch at {res}x{res} ({mb})"
        if mb % world:
            raise UserError(f"{where} does not split over {world} ranks (hint: make every minibatch a multiple of the world size)")
        local = mb // world
        if g > 1 and local % min(g, local):
            raise UserError(f"{where}: each rank's {local} images do not split into minibatch-stddev groups of {g} "
                            "(hint: make minibatch / world size a multiple of architecture.options.mbstd_group_size)")
        if g > 1 and world > 1 and local < g:
            raise UserError(f"{where}: each rank gets {local} images, fewer than the minibatch-stddev group of {g}, "
                            "so the groups would differ from one process (hint: use fewer ranks or larger minibatches)")


def rng_state(gen: torch.Generator, loader: RealLoader, device: torch.device) -> dict:
    """Every random state a run touches, as JSON: the step generator (latents, mixing factors), the
    global torch/numpy/python generators, CUDA's, and the data sampler's (epoch, position)."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "step_generator": ckpt_io.encode_bytes(gen.get_state()),
        "torch_cpu": ckpt_io.encode_bytes(torch.get_rng_state()),
        "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}},
        "python": [py_version, list(py_internal), py_gauss],
        "data_sampler": loader.state_dict(),
    }
    if device.type == "cuda":
        state["torch_cuda"] = ckpt_io.encode_bytes(torch.cuda.get_rng_state(device))
    return state


def set_rng_state(state: dict, gen: torch.Generator, loader: RealLoader, device: torch.device) -> None:
    gen.set_state(ckpt_io.decode_bytes(state["step_generator"]))
    torch.set_rng_state(ckpt_io.decode_bytes(state["torch_cpu"]))
    np_state = state["numpy"]
    np.random.set_state({**np_state, "state": {"key": np.array(np_state["state"]["key"], dtype=np.uint32),
                                               "pos": np_state["state"]["pos"]}})
    py_version, py_internal, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_internal), py_gauss))
    loader.load_state_dict(state["data_sampler"])
    if device.type == "cuda" and "torch_cuda" in state:
        torch.cuda.set_rng_state(ckpt_io.decode_bytes(state["torch_cuda"]), device)


def default_tick_kimg(total_kimg: float) -> float:
    return max(1.0, round(total_kimg / 30.0))


def versions() -> dict:
    return {"progan_zoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# ------------------------------------------------------------------------------------------------
# The run.

def train(cfg: TrainConfig) -> Path:
    """Train a spec progressively; returns the run directory. Raises UserError on bad input or a
    non-finite loss (after which the last good checkpoint is still there to resume from)."""
    info = init_distributed(cfg.device)
    try:
        return _train(cfg, info)
    finally:
        shutdown(info)


def _train(cfg: TrainConfig, info: DistInfo) -> Path:
    device = info.device

    # -- what to resume, which spec ------------------------------------------------------------
    resume = ckpt_io.load_checkpoint(cfg.resume) if cfg.resume else None
    resume_run = resume.path.parent.parent if resume else None
    spec_path = cfg.spec or (str(resume_run / "spec.yaml") if resume_run else None)
    if spec_path is None:
        raise UsageError("no spec given (hint: progan-zoo train SPEC, or --resume RUN_DIR)")
    torch.manual_seed(cfg.seed)  # The initial weights: the same on every rank.
    compiled = compile_spec(spec_path)
    spec = compiled.spec
    if resume and resume.state["spec_sha256"] != compiled.sha256:
        raise UserError(f"{spec_path}: differs from the spec the checkpoint {resume.path} was trained with "
                        f"(sha256 {resume.state['spec_sha256'][:12]}...) (hint: resume with the run's own spec.yaml, "
                        "or leave SPEC out)")
    seed = int(resume.state["seed"]) if resume else cfg.seed

    # -- precision and speed options (the default is paper-faithful fp32) ---------------------------
    if cfg.amp not in ("none", "bf16"):
        raise UserError(f"--amp {cfg.amp}: unknown (hint: none or bf16)")
    if cfg.amp == "bf16" and device.type != "cuda":
        raise UserError("--amp bf16 needs a CUDA device (hint: drop --amp on the CPU)")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.backends.cudnn.benchmark = not cfg.deterministic
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)

    # -- networks, optimizers, loss, schedule -----------------------------------------------------
    G, D = compiled.G.to(device), compiled.D.to(device)
    if cfg.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    broadcast_module(G, info)
    broadcast_module(D, info)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G, opt_D = make_optimizer(G, spec, device), make_optimizer(D, spec, device)
    nets = Nets(G, D, G_ema, opt_G, opt_D, make_loss(spec.training.loss), info,
                amp=cfg.amp == "bf16", channels_last=cfg.channels_last)
    sched = Schedule(spec)
    check_minibatches(spec, sched, info.world)
    total_kimg = float(cfg.kimg if cfg.kimg is not None else spec.training.total_kimg)
    tick_kimg = float(cfg.tick_kimg or default_tick_kimg(total_kimg))
    decay = spec.training.g_ema_decay

    # -- data and random streams -------------------------------------------------------------------
    mirror = cfg.mirror
    if mirror is None:
        mirror = resume.state["rng"]["data_sampler"]["mirror"] if resume else spec.training.mirror_augment
    data_source = cfg.data or (resume.state.get("data") if resume else None) or spec.data.source
    images = open_dataset(data_source, spec.data.resolution, spec.data.channels, progress=cfg.progress and info.is_main)
    loader = RealLoader(images, seed, mirror)
    gen = torch.Generator().manual_seed(seed)       # latents and mixing factors of every step
    fixed_z = torch.from_numpy(np.random.default_rng([seed, 7]).standard_normal((cfg.grid, G.z_dim)).astype(np.float32))

    # -- state ---------------------------------------------------------------------------------------
    nimg, step, tick = 0, 0, 0
    prev_lod: float | None = None
    if resume:
        G.load_state_dict(resume.tensors("G"))
        G_ema.load_state_dict(resume.tensors("G_ema"))
        D.load_state_dict(resume.tensors("D"))
        optim = resume.tensors("optim")
        ckpt_io.load_optimizer_tensors(opt_G, dict(G.named_parameters()), "G", optim)
        ckpt_io.load_optimizer_tensors(opt_D, dict(D.named_parameters()), "D", optim)
        s = resume.state
        nimg, step, tick, prev_lod = int(s["nimg"]), int(s["step"]), int(s["tick"]), s["lod"]
        set_rng_state(s["rng"], gen, loader, device)

    # -- the run directory (rank 0 writes everything) ----------------------------------------------
    if cfg.out:
        run_dir = Path(cfg.out)
    elif resume_run is not None:
        run_dir = resume_run
    else:
        run_dir = Path("runs") / f"{spec.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if info.is_main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        if not (run_dir / "spec.yaml").exists():
            (run_dir / "spec.yaml").write_text(compiled.raw.text)
        run_json = {
            "spec_name": spec.name, "spec_revision": spec.revision, "spec_sha256": compiled.sha256,
            "data": str(data_source), "data_images": len(images), "seed": seed, "command": cfg.argv or sys.argv,
            "world_size": info.world, "device": device.type, "total_kimg": total_kimg, "tick_kimg": tick_kimg,
            "resumed_from": str(resume.path) if resume else None, "config": asdict(cfg), "versions": versions(),
            "started": datetime.now().isoformat(timespec="seconds"),
        }
        (run_dir / "run.json").write_text(json.dumps(run_json, indent=2) + "\n")

    def save(phase: Phase) -> Path | None:
        if not info.is_main:
            return None
        tensors = {
            "G": G.state_dict(), "G_ema": G_ema.state_dict(), "D": D.state_dict(),
            "optim": {**ckpt_io.optimizer_tensors(opt_G, dict(G.named_parameters()), "G"),
                      **ckpt_io.optimizer_tensors(opt_D, dict(D.named_parameters()), "D")},
        }
        state = {
            "nimg": nimg, "kimg": nimg / 1000.0, "step": step, "tick": tick, "stage": phase.stage,
            "resolution": phase.resolution, "alpha": phase.alpha, "lod": phase.lod, "seed": seed,
            "spec_sha256": compiled.sha256, "spec_name": spec.name, "data": str(data_source), "world_size": info.world,
            "optimizer": {"name": "adam", "learning_rate": phase.learning_rate,
                          "betas": [spec.training.optimizer.beta1, spec.training.optimizer.beta2],
                          "eps": spec.training.optimizer.eps},
            "rng": rng_state(gen, loader, device), "versions": versions(),
        }
        return ckpt_io.save_checkpoint(run_dir, nimg, tensors, state, keep=cfg.keep)

    def sample_grid(phase: Phase) -> None:
        if not info.is_main:
            return
        with torch.no_grad():
            imgs = torch.cat([G_ema(z.to(device), phase.stage, phase.alpha) for z in fixed_z.split(64)])
        picture = make_grid(imgs, size=spec.data.resolution)
        save_png(picture, run_dir / "samples" / f"kimg-{nimg // 1000:06d}.png")
        save_png(picture, run_dir / "samples" / "latest.png")

    # -- the loop ------------------------------------------------------------------------------------
    total_nimg = int(round(total_kimg * 1000))
    bar = None
    if cfg.progress and info.is_main:
        from tqdm import tqdm
        bar = tqdm(total=total_nimg, initial=min(nimg, total_nimg), unit="img", unit_scale=True, dynamic_ncols=True,
                   desc=spec.name)
    tick_start_nimg, tick_time, train_time = nimg, time.time(), 0.0
    sums: dict[str, float] = {}
    count = 0
    steps_here = 0
    phase = sched.at(nimg / 1000.0)
    last_ckpt: Path | None = ckpt_io.latest_checkpoint(run_dir) if info.is_main else None
    while nimg < total_nimg and (cfg.max_steps is None or steps_here < cfg.max_steps):
        t0 = time.time()
        phase = sched.at(nimg / 1000.0)
        if spec.training.optimizer.reset_on_growth and lod_crossed(prev_lod, phase.lod):
            opt_G.state.clear()
            opt_D.state.clear()
        prev_lod = phase.lod
        for opt in (opt_G, opt_D):
            for group in opt.param_groups:
                group["lr"] = phase.learning_rate

        stats: dict[str, torch.Tensor] = {}
        for _ in range(spec.training.d_repeats):
            reals = real_batch(loader, phase, nets)
            z, mix = draw(gen, phase, G.z_dim, info, nets.loss.needs_mix)
            stats.update(d_step(nets, reals, z, mix, phase))
            nimg += phase.minibatch
        z, _ = draw(gen, phase, G.z_dim, info, False)
        stats.update(g_step(nets, z, phase))
        ema_update(G_ema, G, decay)
        step += 1
        steps_here += 1

        # Losses: averaged over ranks (so every rank agrees whether they are finite), summed over the tick.
        keys = sorted(stats)
        values = all_reduce_mean(torch.stack([stats[k].float() for k in keys]), info).tolist()
        train_time += time.time() - t0
        if not all(math.isfinite(v) for v in values):
            bad = ", ".join(f"{k} {v:.4g}" for k, v in zip(keys, values))
            where = last_ckpt or "none written yet"
            if bar is not None:
                bar.close()
            raise UserError(f"non-finite loss at kimg {nimg / 1000:.3f} ({phase.resolution}x{phase.resolution}, "
                            f"alpha {phase.alpha:.3f}): {bad}; stopped, last good checkpoint: {where} "
                            "(hint: lower the learning rate, or resume from that checkpoint with another --seed)")
        for k, v in zip(keys, values):
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        if bar is not None:
            bar.update(min(nimg, total_nimg) - bar.n)
            if step % 5 == 0:
                bar.set_postfix_str(f"{phase.resolution}px a={phase.alpha:.2f} kimg={nimg / 1000:.1f} "
                                    f"{(nimg - tick_start_nimg) / max(train_time, 1e-9):.0f}img/s "
                                    + " ".join(f"{k}={sums[k] / count:.3g}" for k in ("D/loss", "G/loss") if k in sums))

        # -- a tick: log line, sample grid, maybe a checkpoint --------------------------------------
        done = nimg >= total_nimg or (cfg.max_steps is not None and steps_here >= cfg.max_steps)
        if nimg - tick_start_nimg >= tick_kimg * 1000 or done:
            tick += 1
            now = time.time()
            record = {
                "tick": tick, "kimg": round(nimg / 1000.0, 3), "step": step, "resolution": phase.resolution,
                "stage": phase.stage, "alpha": round(phase.alpha, 6), "lod": round(phase.lod, 6),
                "minibatch": phase.minibatch, "learning_rate": phase.learning_rate,
                **{k: sums[k] / count for k in sorted(sums)},
                "images_per_s": round((nimg - tick_start_nimg) / max(train_time, 1e-9), 2),
                "sec_per_tick": round(now - tick_time, 3), "time": datetime.now().isoformat(timespec="seconds"),
            }
            if device.type == "cuda":
                record["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
            if info.is_main:
                with open(run_dir / "log.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                sample_grid(phase)
                if tick % max(cfg.snapshot_ticks, 1) == 0 or done:
                    last_ckpt = save(phase)
            barrier(info)
            tick_start_nimg, tick_time, train_time, sums, count = nimg, time.time(), 0.0, {}, 0
    if bar is not None:
        bar.close()
    return run_dir
