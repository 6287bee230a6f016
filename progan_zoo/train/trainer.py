"""The progressive training loop (paper section 2; official TF ``train.py``), readable top to bottom.

The official loop, which ``Run.train`` follows step for step::

    while images shown < total:
        phase = Schedule(spec).at(kimg)        level of detail, minibatch, learning rate  (once per group)
        reset Adam if floor or ceil of the lod changed                                     (official reset_opt_for_new_lod)
        repeat minibatch_repeats (4) times:
            repeat d_repeats times:
                D step: reals faded like G's output; fakes from G; WGAN-GP + drift
                G_ema <- lerp(G, G_ema, decay)     with every D step, before the G step (official Gs_update_op)
                images shown += minibatch
            G step: fresh latents through G and D
        maybe a tick: log line, sample grid, checkpoint

Every random draw of a step (image indices, mirror flips, latents, penalty mixing factors) is made
for the *global* minibatch, on every rank, from generators seeded by ``--seed``; a rank keeps the
samples ``rank, rank + W, ...``. So a W-rank run computes what one process would, and a resumed
run continues exactly where the checkpoint left off (bitwise on the CPU).
"""

from __future__ import annotations

import copy
import json
import math
import platform
import random
import sys
import time
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from progan_zoo import __version__
from progan_zoo.compiler import CompiledSpec, build, load, validate
from progan_zoo.compiler.graph import to_graph
from progan_zoo.data import RealLoader, open_dataset
from progan_zoo.errors import RunFailure, UsageError, UserError
from progan_zoo.nn import downsample2x, upsample2x

from . import checkpoint as ckpt_io
from . import rundir
from .checkpoint import TrainState
from .dist import DistInfo, all_reduce_grads, all_reduce_mean, barrier, broadcast_module, init_distributed, shutdown
from .graphs import StaticSteps
from .interrupt import StopRequests
from .losses import make_loss
from .monitor import Monitor, check_metric_options
from .preflight import check_memory
from .samples import make_grid, save_png
from .schedule import Phase, Schedule, schedule_offset

if TYPE_CHECKING:  # a type only: the CLI opens the parent (zoo sits beside train, not below it)
    from progan_zoo.zoo.finetune import Parent


@dataclass
class TrainConfig:
    """Options of one training run (the ``progan-zoo train`` flags)."""

    spec: str | None = None           # Spec file; None with ``resume``: the run's own spec.yaml.
    data: str | None = None           # Built-in name, cache folder, image folder or zip; None: the spec's.
    out: str | None = None            # Run directory; None: runs/<spec name>-<time> (or the resumed run's).
    kimg: float | None = None         # Length in thousands of real images; None: the spec's total_kimg.
    resume: str | None = None         # Run directory or checkpoint folder to continue from.
    init_from: str | None = None      # Saved model to fine-tune from (its opened weights come as train(parent=)).
    seed: int = 0
    device: str = "auto"              # auto | cpu | cuda
    tick_kimg: float | None = None    # Log, sample grid every tick; None: total/30 rounded, at least 1 kimg.
    snapshot_ticks: int = 5           # Checkpoint every this many ticks (and at the end).
    keep: int = 3                     # Newest checkpoints kept.
    grid: int = 64                    # Images in each sample grid.
    mirror: bool | None = None        # Mirror augmentation; None: the spec's mirror_augment.
    amp: str = "none"                 # none | bf16 (autocast of G and D, CPU or CUDA; the penalty stays fp32)
    amp_penalty: bool = False         # With --amp bf16: the penalty's double backward under autocast too.
    tf32: bool = False                # Allow TF32 matmuls and convolutions on CUDA.
    channels_last: bool = False       # NHWC memory format.
    lazy_penalty: int = 1             # The penalty every k-th D step, times k (lazy regularisation; 1: every step).
    shared_fakes: bool = False        # One G forward per minibatch, shared by the last D step and the G step.
    deterministic: bool = False       # torch.use_deterministic_algorithms(True).
    cuda_graphs: bool = False         # Capture each phase's D and G steps in CUDA graphs (CUDA only; graphs.py).
    static_steps: bool = False        # Internal (tests): the --cuda-graphs code path without capture, on any device.
    max_steps: int | None = None      # Stop after the group in which this process's G steps reach this (tests, benchmarks).
    progress: bool = True
    argv: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)   # Metrics measured during training (e.g. ["swd"]).
    metrics_ticks: int = 5            # ... every this many ticks, and at the end.
    metrics_num: int = 1000           # ... with this many generated and real images (at most the data's size).
    tensorboard: str = "auto"         # auto (when installed) | on | off: event files in the run directory.


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
    final_resolution: int = 0          # The penalty's gradient is taken at this resolution (official; 0: the stage's).
    ema_decay: float = 0.999
    amp_penalty: bool = False          # The penalty under autocast as well (opt-in; default fp32).
    lazy_penalty: int = 1              # Penalty every k-th D step, scaled by k.
    shared_fakes: bool = False         # G step reuses the last D step's latents and G forward.

    def autocast(self, cache: bool = True):
        """bf16 autocast under ``--amp bf16``. ``cache=False`` inside CUDA graph capture (PyTorch docs:
        autocast's weight-cast cache must not outlive a captured region); the numbers are the same."""
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.dist.device.type, dtype=torch.bfloat16, cache_enabled=cache)

    def penalty_weight(self, d_index: int) -> float:
        """Weight of the penalty on the ``d_index``-th D step of the run: lazy regularisation (Karras et al.
        2020, StyleGAN2 sec. 3.1) takes it every k-th step, times k, so its expected gradient is unchanged."""
        k = max(int(self.lazy_penalty), 1)
        return float(k) if d_index % k == 0 else 0.0

    def fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def norm_scale(self, phase: Phase) -> float:
        scale = getattr(self.loss, "norm_scale", None)
        return scale(phase.resolution, self.final_resolution or phase.resolution) if scale else 1.0


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


def draw(gen: torch.Generator, phase: Phase, z_dim: int, info: DistInfo, mix: bool,
         on_device: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents [N, z_dim] (and penalty mixing factors [N]) drawn for the global minibatch, this rank's share.
    ``on_device=False`` leaves them on the CPU (the static steps copy them in without a blocking copy)."""
    z = torch.randn(phase.minibatch, z_dim, generator=gen)[info.rank::info.world]
    u = torch.rand(phase.minibatch, generator=gen)[info.rank::info.world] if mix else None
    if not on_device:
        return z, u

    def put(t: torch.Tensor) -> torch.Tensor:
        if info.device.type != "cuda":
            return t.to(info.device)
        # Pinned and non-blocking: a blocking copy from pageable memory makes the host wait for every
        # queued kernel, so it could not prepare the next step while the GPU runs this one.
        return t.pin_memory().to(info.device, non_blocking=True)

    return put(z), (put(u) if u is not None else None)


def d_step(nets: Nets, reals: torch.Tensor, z: torch.Tensor, mix: torch.Tensor | None, phase: Phase,
           gp_weight: float = 1.0, fakes: torch.Tensor | None = None) -> dict:
    """One D step. ``gp_weight``: the penalty's factor (0 skips it: lazy regularisation); ``fakes``: G's
    output for ``z`` when the caller already has it (``--shared-fakes``), else drawn here without a graph."""
    G, D = nets.G, nets.D
    D.requires_grad_(True)
    if fakes is None:
        with torch.no_grad(), nets.autocast():
            fakes = nets.fmt(G(z, phase.stage, phase.alpha).float())               # [NCHW]
    with nets.autocast():
        loss, stats = nets.loss.d_loss(lambda x: D(x, phase.stage, phase.alpha), reals, fakes.detach().float(), mix,
                                       norm_scale=nets.norm_scale(phase), gp_weight=gp_weight,
                                       gp_autocast=nets.amp_penalty)
    nets.opt_D.zero_grad(set_to_none=True)
    loss.backward()
    all_reduce_grads(D.parameters(), nets.dist)
    nets.opt_D.step()
    return stats


def g_step(nets: Nets, z: torch.Tensor | None, phase: Phase, fakes: torch.Tensor | None = None) -> dict:
    """One G step on fresh latents ``z``, or on ``fakes`` already generated with their graph (shared)."""
    G, D = nets.G, nets.D
    D.requires_grad_(False)  # Only G's gradients are needed (the official G_opt covers G's variables).
    with nets.autocast():
        if fakes is None:
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
    """Official ``setup_as_moving_average_of``: ema <- lerp(G, ema, decay) for every weight.
    The fade weight is not averaged: samples use the current alpha (the official copies ``lod`` with beta 0)."""
    ema_p, g_p = list(G_ema.parameters()), list(G.parameters())
    torch._foreach_lerp_(ema_p, g_p, 1.0 - decay)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def lod_crossed(prev: float | None, lod: float) -> bool:
    """The official ``reset_opt_for_new_lod`` trigger: floor or ceil of the level of detail changed
    (a fade starts, or a fade ends)."""
    return prev is not None and (math.floor(prev) != math.floor(lod) or math.ceil(prev) != math.ceil(lod))


def reset_optimizers(*opts: torch.optim.Optimizer) -> None:
    """Official ``reset_optimizer_state``: Adam's moments and step counts back to zero."""
    for opt in opts:
        opt.state.clear()


def set_learning_rate(lr: float, *opts: torch.optim.Optimizer) -> None:
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = lr


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


def check_precision(cfg: TrainConfig, device: torch.device) -> None:
    """The opt-in speed flags; the default is paper-faithful fp32."""
    if cfg.amp not in ("none", "bf16"):
        raise UsageError(f"--amp {cfg.amp}: unknown (hint: none or bf16)")
    if cfg.amp_penalty and cfg.amp != "bf16":
        raise UsageError("--amp-penalty only applies with --amp bf16 (hint: add --amp bf16 or drop --amp-penalty)")
    if cfg.lazy_penalty < 1:
        raise UsageError(f"--lazy-penalty {cfg.lazy_penalty}: must be >= 1 (1: the penalty every D step, as the paper)")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.backends.cudnn.benchmark = not cfg.deterministic
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)


def check_graphs(cfg: TrainConfig, device: torch.device, world: int) -> None:
    """``--cuda-graphs``: a CUDA device, one process, and the step kinds graphs.py captures."""
    if not (cfg.cuda_graphs or cfg.static_steps):
        return
    if cfg.cuda_graphs and device.type != "cuda":
        raise UsageError(f"--cuda-graphs needs a CUDA device, and this run's device is {device.type} "
                         "(hint: drop --cuda-graphs, or train on a GPU with --device cuda)")
    if world > 1:
        raise UsageError(f"--cuda-graphs is not supported with {world} ranks yet: the gradient all-reduce is not "
                         "captured (hint: drop --cuda-graphs for multi-GPU runs)")
    if cfg.shared_fakes:
        raise UsageError("--cuda-graphs cannot be combined with --shared-fakes: the shared G forward's graph would "
                         "span two captured steps (hint: drop one of the two flags)")


# ------------------------------------------------------------------------------------------------
# The run.

def train(cfg: TrainConfig, parent: "Parent | None" = None) -> Path:
    """Train a spec progressively; returns the run directory. Raises UserError on bad input (a run
    directory that holds another run or is locked by another process among them), RunFailure on a
    non-finite loss or a failed write (after which the last good checkpoint is still there to resume
    from). SIGINT/SIGTERM end the run early with a checkpoint (``interrupt.py``). ``parent``: the weights to
    start from (``zoo.finetune.Parent``, opened by the caller for ``cfg.init_from``)."""
    info = init_distributed(cfg.device)
    try:
        with ExitStack() as held:  # the run directory's lock, released however the run ends
            return Run(cfg, info, held, parent).train()
    finally:
        shutdown(info)


class Run:
    """One training run: its networks, data, counters and run directory, and the loop's steps as methods."""

    def __init__(self, cfg: TrainConfig, info: DistInfo, held: ExitStack | None = None,
                 parent: "Parent | None" = None) -> None:
        """``held``: where the run directory's lock goes (``train`` releases it at the end); without it
        the directory is only checked (a Run built to inspect, not to train). ``parent``: a saved model
        to start from (``--init-from``; ``zoo.finetune.Parent``): its weights, at its stage of the schedule."""
        self.cfg, self.info = cfg, info
        device = self.device = info.device

        # What to resume, which spec.
        if parent is not None and cfg.resume:
            raise UsageError("--init-from starts a new run and --resume continues one; give one of them (a resumed "
                             "fine-tuning run keeps its parent)")
        self.resume = resume = ckpt_io.load_checkpoint(cfg.resume) if cfg.resume else None
        resume_run = resume.path.parent.parent if resume else None
        spec_path = cfg.spec or (str(resume_run / "spec.yaml") if resume_run else None)
        if spec_path is None:
            raise UsageError("no spec given (hint: progan-zoo train SPEC, or --resume RUN_DIR)")
        # The spec's cost is checked against the device's free memory before any weight is made.
        raw = load(spec_path)
        spec = validate(raw)
        graph = to_graph(spec)
        until = float(cfg.kimg if cfg.kimg is not None else spec.training.total_kimg)
        self.preflight = check_memory(graph, spec, device, info.world, until_kimg=until)
        torch.manual_seed(cfg.seed)  # The initial weights: the same on every rank.
        self.compiled = compiled = CompiledSpec(raw, spec, graph, *build(graph))
        self.spec = spec
        if resume and resume.state.spec_sha256 != compiled.sha256:
            raise UsageError(f"{spec_path}: differs from the spec the checkpoint {resume.path} was trained with "
                             f"(sha256 {resume.state.spec_sha256[:12]}...) (hint: resume with the run's own spec.yaml, "
                             "or leave SPEC out)")
        self.seed = resume.state.seed if resume else cfg.seed
        check_precision(cfg, device)
        check_graphs(cfg, device, info.world)
        check_metric_options(cfg.metrics, spec.data.resolution)
        self.run_dir = Path(cfg.out) if cfg.out else resume_run if resume_run is not None else \
            Path("runs") / f"{spec.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        # Refuse a directory that holds another run, or that another process trains into, before any
        # weights are read (the other process may be pruning them) or anything is written (rundir.py).
        resume_ckpt = resume.path if resume else None
        if held is None:
            self.on_main(lambda: rundir.check_target(self.run_dir, resume_ckpt))
        else:
            lock = self.on_main(lambda: rundir.claim(self.run_dir, resume_ckpt))
            if lock is not None:
                held.callback(lock.release)

        # Networks, optimizers, loss, schedule.
        G, D = compiled.G.to(device), compiled.D.to(device)
        if cfg.channels_last:
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        broadcast_module(G, info)
        broadcast_module(D, info)
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        if parent is not None:
            parent.apply(G, D, G_ema, spec, spec_path)
        self.nets = Nets(G, D, G_ema, make_optimizer(G, spec, device), make_optimizer(D, spec, device),
                         make_loss(spec.training.loss), info, amp=cfg.amp == "bf16", channels_last=cfg.channels_last,
                         final_resolution=spec.architecture.resolution, ema_decay=spec.training.g_ema_decay,
                         amp_penalty=cfg.amp_penalty, lazy_penalty=cfg.lazy_penalty, shared_fakes=cfg.shared_fakes)
        # --cuda-graphs: the D and G steps on static buffers, captured per phase (graphs.py). The internal
        # static_steps switch runs the same code without capture (the CPU tests).
        self.static = StaticSteps(self.nets, capture=cfg.cuda_graphs) if cfg.cuda_graphs or cfg.static_steps else None
        self.sched = Schedule(spec)
        check_minibatches(spec, self.sched, info.world)
        # A resumed run keeps its own length and tick unless asked otherwise: `--resume RUN` after a
        # Ctrl-C continues the run that was cut, not the spec's default one.
        prior = rundir.prior_settings(resume_run) if resume_run is not None else {}
        # A fine-tuning run starts where its parent stands in the schedule (its stage and fade), and a
        # resumed one stays there: the schedule is read at offset + this run's kimg.
        self.init_from = rundir.prior_init_from(resume_run) if resume_run is not None else None
        if parent is not None:
            self.init_from = dict(parent.record(), schedule_kimg_offset=schedule_offset(
                self.sched.stage_starts(), parent.stage, parent.alpha))
            if info.is_main:
                for note in parent.notes:
                    print(f"progan-zoo train: --init-from {note}", file=sys.stderr)
        self.kimg_offset = float((self.init_from or {}).get("schedule_kimg_offset", 0.0))
        self.total_kimg = float(cfg.kimg if cfg.kimg is not None else prior.get("total_kimg", spec.training.total_kimg))
        self.tick_kimg = float(cfg.tick_kimg or prior.get("tick_kimg") or default_tick_kimg(self.total_kimg))

        # Data and random streams.
        mirror = cfg.mirror
        if mirror is None:
            mirror = resume.state.rng["data_sampler"]["mirror"] if resume else spec.training.mirror_augment
        self.data_source = cfg.data or (resume.state.data if resume else None) or spec.data.source
        self.images = open_dataset(self.data_source, spec.data.resolution, spec.data.channels,
                                   progress=cfg.progress and info.is_main, crop=spec.data.crop)
        self.loader = RealLoader(self.images, self.seed, mirror)
        self.gen = torch.Generator().manual_seed(self.seed)   # latents and mixing factors of every step
        self.fixed_z = torch.from_numpy(
            np.random.default_rng([self.seed, 7]).standard_normal((cfg.grid, G.z_dim)).astype(np.float32))

        # Counters.
        self.nimg, self.step, self.tick = 0, 0, 0
        self.prev_lod: float | None = None
        if resume:
            self._load(resume)
        self.stop = StopRequests(announce=info.is_main)
        self.last_ckpt: Path | None = None
        self.stopped = False                  # a stop request (on any rank) ended the run early

    def on_main(self, fn):
        """Run ``fn`` on rank 0 only; if it raises a UserError, every rank raises (none is left waiting
        in a collective for a rank that has gone). Returns what ``fn`` returned (None on other ranks)."""
        err, out = None, None
        if self.info.is_main:
            try:
                out = fn()
            except UserError as exc:
                err = exc
        if self.info.enabled:
            failed = all_reduce_mean(torch.tensor([1.0 if err else 0.0], device=self.device), self.info).item() > 0
            if failed and err is None:
                raise UsageError("rank 0 refused to start (its message says why)")
        if err is not None:
            raise err
        return out

    # -- state in and out ------------------------------------------------------------------------

    def _load(self, resume: ckpt_io.Checkpoint) -> None:
        n = self.nets
        n.G.load_state_dict(resume.tensors("G"))
        n.G_ema.load_state_dict(resume.tensors("G_ema"))
        n.D.load_state_dict(resume.tensors("D"))
        optim = resume.tensors("optim")
        ckpt_io.load_optimizer_tensors(n.opt_G, dict(n.G.named_parameters()), "G", optim)
        ckpt_io.load_optimizer_tensors(n.opt_D, dict(n.D.named_parameters()), "D", optim)
        s = resume.state
        self.nimg, self.step, self.tick, self.prev_lod = s.nimg, s.step, s.tick, s.lod
        set_rng_state(s.rng, self.gen, self.loader, self.device)

    def write_run_json(self) -> None:
        cfg, spec = self.cfg, self.spec
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        if not (self.run_dir / "spec.yaml").exists():
            (self.run_dir / "spec.yaml").write_text(self.compiled.raw.text)
        run_json = {
            "spec_name": spec.name, "spec_revision": spec.revision, "spec_sha256": self.compiled.sha256,
            "spec_resolved_sha256": self.compiled.resolved_sha256, "data": str(self.data_source), "data_images": len(self.images), "seed": self.seed,
            "command": cfg.argv or sys.argv, "world_size": self.info.world, "device": self.device.type,
            "total_kimg": self.total_kimg, "tick_kimg": self.tick_kimg, "memory_estimate": self.preflight.message(),
            "resumed_from": str(self.resume.path) if self.resume else None, "init_from": self.init_from,
            "config": asdict(cfg),
            "versions": versions(), "started": datetime.now().isoformat(timespec="seconds"),
        }
        (self.run_dir / "run.json").write_text(json.dumps(run_json, indent=2) + "\n")

    def save(self, phase: Phase) -> Path:
        n, spec = self.nets, self.spec
        tensors = {
            "G": n.G.state_dict(), "G_ema": n.G_ema.state_dict(), "D": n.D.state_dict(),
            "optim": {**ckpt_io.optimizer_tensors(n.opt_G, dict(n.G.named_parameters()), "G"),
                      **ckpt_io.optimizer_tensors(n.opt_D, dict(n.D.named_parameters()), "D")},
        }
        o = spec.training.optimizer
        state = TrainState(
            nimg=self.nimg, step=self.step, tick=self.tick, stage=phase.stage, resolution=phase.resolution,
            alpha=phase.alpha, lod=phase.lod, seed=self.seed, spec_sha256=self.compiled.sha256, spec_name=spec.name,
            data=str(self.data_source), world_size=self.info.world,
            optimizer={"name": "adam", "learning_rate": phase.learning_rate, "betas": [o.beta1, o.beta2], "eps": o.eps},
            rng=rng_state(self.gen, self.loader, self.device), versions=versions(),
            spec_resolved_sha256=self.compiled.resolved_sha256,
        )
        try:
            return ckpt_io.save_checkpoint(self.run_dir, self.nimg, tensors, state, keep=self.cfg.keep)
        except OSError as exc:
            # A full disk (or any failed write) is not the user's input: stop with one line (exit 1).
            # The half-written checkpoint is gone (save_checkpoint removes it); the previous one is intact.
            raise RunFailure(f"{self.run_dir / 'checkpoints'}: cannot write the checkpoint at kimg {self.nimg / 1000:.3f} "
                             f"({exc.strerror or exc}); stopped. Last complete checkpoint: "
                             f"{self.last_ckpt or 'none'} (hint: free space, then `progan-zoo train --resume "
                             f"{self.run_dir}`)") from None

    @torch.no_grad()
    def sample_grid(self, phase: Phase) -> np.ndarray:
        G_ema = self.nets.G_ema
        imgs = torch.cat([G_ema(z.to(self.device), phase.stage, phase.alpha) for z in self.fixed_z.split(64)])
        picture = make_grid(imgs, size=self.spec.data.resolution)
        save_png(picture, self.run_dir / "samples" / f"kimg-{self.nimg // 1000:06d}.png")
        save_png(picture, self.run_dir / "samples" / "latest.png")
        return picture

    # -- the loop ----------------------------------------------------------------------------------

    def begin_group(self) -> Phase:
        """Official: the schedule, the optimizer-reset check and the learning rate, once per
        ``minibatch_repeats`` minibatches."""
        n = self.nets
        phase = self.sched.at(self.kimg_offset + self.nimg / 1000.0)
        if self.spec.training.optimizer.reset_on_growth and lod_crossed(self.prev_lod, phase.lod):
            reset_optimizers(n.opt_G, n.opt_D)
        self.prev_lod = phase.lod
        set_learning_rate(phase.learning_rate, n.opt_G, n.opt_D)
        return phase

    def minibatch(self, phase: Phase) -> dict[str, torch.Tensor]:
        """One official minibatch: d_repeats D steps (each followed by the EMA update), then a G step."""
        n, training = self.nets, self.spec.training
        z_dim = n.G.z_dim
        stats: dict[str, torch.Tensor] = {}
        fakes = None
        for r in range(training.d_repeats):
            reals = real_batch(self.loader, phase, n)
            z, mix = draw(self.gen, phase, z_dim, self.info, n.loss.needs_mix, on_device=self.static is None)
            if n.shared_fakes and r == training.d_repeats - 1:
                # Opt-in: one G forward (with its graph) serves this D step (detached) and the G step.
                with n.autocast():
                    fakes = n.fmt(n.G(z, phase.stage, phase.alpha))                   # [NCHW]
            # The D step's index in the run (G steps are checkpointed, so a resumed run agrees).
            d_index = self.step * training.d_repeats + r
            if self.static is not None:
                stats.update(self.static.d_step(reals, z, mix, phase, gp_weight=n.penalty_weight(d_index)))  # EMA included
            else:
                stats.update(d_step(n, reals, z, mix, phase, gp_weight=n.penalty_weight(d_index), fakes=fakes))
                ema_update(n.G_ema, n.G, n.ema_decay)
            self.nimg += phase.minibatch
        if fakes is None:
            z, _ = draw(self.gen, phase, z_dim, self.info, False, on_device=self.static is None)
        if self.static is not None:
            stats.update(self.static.g_step(z, phase))
        else:
            stats.update(g_step(n, z, phase, fakes=fakes))
        self.step += 1
        return stats

    def check_finite(self, keys: list[str], values: list[float], phase: Phase, last_ckpt: Path | None) -> None:
        if all(math.isfinite(v) for v in values):
            return
        bad = ", ".join(f"{k} {v:.4g}" for k, v in zip(keys, values))
        raise RunFailure(f"non-finite loss at kimg {self.nimg / 1000:.3f} ({phase.resolution}x{phase.resolution}, "
                        f"alpha {phase.alpha:.3f}): {bad}; stopped, last good checkpoint: {last_ckpt or 'none written yet'} "
                        "(hint: lower the learning rate, or resume from that checkpoint with another --seed)")

    def write_tick(self, phase: Phase, record: dict, done: bool) -> Path | None:
        """Rank 0: metrics when due, the log line, the sample grid, TensorBoard, and every ``snapshot_ticks``
        ticks (and at the end) a checkpoint."""
        record.update(self.monitor.measure(self.tick, done, self.nets.G_ema, phase.stage, phase.alpha,
                                           self.images.level(self.spec.data.resolution), record["kimg"]))
        try:
            with open(self.run_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            self.monitor.write(record, self.sample_grid(phase), self.nimg)
        except OSError as exc:
            raise RunFailure(f"{exc.filename or self.run_dir}: cannot write ({exc.strerror or exc}); stopped. Last "
                             f"complete checkpoint: {self.last_ckpt or 'none'} (hint: free space, then "
                             f"`progan-zoo train --resume {self.run_dir}`)") from None
        if self.tick % max(self.cfg.snapshot_ticks, 1) == 0 or done:
            self.last_ckpt = self.save(phase)
            return self.last_ckpt
        return None

    def train(self) -> Path:
        cfg, info = self.cfg, self.info
        if info.is_main:
            self.write_run_json()
            self.monitor = Monitor(self.run_dir, cfg.metrics, cfg.metrics_ticks, cfg.metrics_num, self.seed,
                                   cfg.tensorboard)
        total_nimg = int(round(self.total_kimg * 1000))
        bar = tqdm(total=total_nimg, initial=min(self.nimg, total_nimg), unit="img", unit_scale=True,
                   dynamic_ncols=True, desc=self.spec.name) if cfg.progress and info.is_main else None
        tick_start_nimg, tick_time, train_time = self.nimg, time.time(), 0.0
        sums: dict[str, float] = {}
        count, steps_here = 0, 0
        self.last_ckpt = ckpt_io.latest_checkpoint(self.run_dir) if info.is_main else None
        self.stop.install()  # SIGINT/SIGTERM: finish this group, checkpoint, return (interrupt.py)
        try:
            while self.nimg < total_nimg and (cfg.max_steps is None or steps_here < cfg.max_steps):
                t0 = time.time()
                phase = self.begin_group()
                group: list[dict[str, torch.Tensor]] = []
                for _ in range(self.spec.training.minibatch_repeats):
                    group.append(self.minibatch(phase))
                    steps_here += 1
                # Losses: averaged over the group's minibatches and over ranks (so every rank agrees whether they are finite).
                # A key missing from some minibatches (D/gp under --lazy-penalty) is averaged where present.
                keys = sorted(set().union(*group))
                # The stop flag rides along: any rank's signal stops every rank after this same group.
                values = all_reduce_mean(torch.stack([torch.stack([s[k].float() for s in group if k in s]).mean() for k in keys]
                                                     + [torch.tensor(float(self.stop.requested), device=self.device)]),
                                         info).tolist()
                stop = values.pop() > 0
                self.stopped = self.stopped or stop
                train_time += time.time() - t0
                self.check_finite(keys, values, phase, self.last_ckpt)
                for k, v in zip(keys, values):
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                rate = (self.nimg - tick_start_nimg) / max(train_time, 1e-9)
                if bar is not None:
                    bar.update(min(self.nimg, total_nimg) - bar.n)
                    bar.set_postfix_str(f"{phase.resolution}px a={phase.alpha:.2f} kimg={self.nimg / 1000:.1f} {rate:.0f}img/s "
                                        + " ".join(f"{k}={sums[k] / count:.3g}" for k in ("D/loss", "G/loss") if k in sums))

                # A tick (official: checked after each group): log line, sample grid, maybe a checkpoint.
                done = self.nimg >= total_nimg or (cfg.max_steps is not None and steps_here >= cfg.max_steps) or stop
                if self.nimg - tick_start_nimg >= self.tick_kimg * 1000 or done:
                    self.tick += 1
                    record = {
                        "tick": self.tick, "kimg": round(self.nimg / 1000.0, 3), "step": self.step,
                        "resolution": phase.resolution, "stage": phase.stage, "alpha": round(phase.alpha, 6),
                        "lod": round(phase.lod, 6), "minibatch": phase.minibatch, "learning_rate": phase.learning_rate,
                        **{k: sums[k] / count for k in sorted(sums)},
                        "images_per_s": round(rate, 2), "sec_per_tick": round(time.time() - tick_time, 3),
                        "time": datetime.now().isoformat(timespec="seconds"),
                    }
                    if self.device.type == "cuda":
                        record["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3)
                    if info.is_main:
                        self.write_tick(phase, record, done)
                    barrier(info)
                    if stop:
                        break
                    tick_start_nimg, tick_time, train_time, sums, count = self.nimg, time.time(), 0.0, {}, 0
        finally:
            self.stop.restore()
            if bar is not None:
                bar.close()
            if info.is_main:
                self.monitor.close()
        if self.stopped and info.is_main:
            print(f"progan-zoo train: stopped by {self.stop.name or 'a signal to another rank'} at kimg {self.nimg / 1000:.3f}; checkpoint "
                  f"{self.last_ckpt} (continue with: progan-zoo train --resume {self.run_dir})", file=sys.stderr)
        return self.run_dir
