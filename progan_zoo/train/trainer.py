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
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from progan_zoo import __version__
from progan_zoo.compiler import compile_spec, load
from progan_zoo.data import RealLoader, open_dataset
from progan_zoo.errors import RunFailure, UsageError, UserError
from progan_zoo.fsutil import replaced_atomically

from . import checkpoint as ckpt_io
from . import rundir
from .checkpoint import TrainState, rng_state, set_rng_state
from .checks import check_graphs, check_minibatches, check_precision
from .dist import DistInfo, all_reduce_mean, barrier, broadcast_module, init_distributed, shutdown
from .graphs import StaticSteps
from .interrupt import StopRequests
from .acgan import ACGAN, draw_labels
from .losses import make_loss
from .monitor import Monitor, check_metric_options
from .preflight import check_memory
from .samples import make_grid, save_png
from .schedule import Phase, Schedule, schedule_offset
from .steps import Nets, d_step, draw, ema_update, g_step, labeled_real_batch

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


def default_tick_kimg(total_kimg: float) -> float:
    return max(1.0, round(total_kimg / 30.0))


def versions() -> dict:
    return {"progan_zoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# ------------------------------------------------------------------------------------------------
# The run.

def conditional_loss(loss: object, spec) -> object:
    """The spec's loss, with the official AC-GAN label terms when the spec is conditional."""
    return ACGAN(loss, spec.conditioning.cond_weight) if spec.conditioning is not None else loss


def check_labels(spec, images, source, cfg: TrainConfig) -> torch.Tensor | None:
    """The data set's class indices [N] for a conditional spec (None for an unconditional one)."""
    cond = spec.conditioning
    if cond is None:
        return None
    if cfg.cuda_graphs or cfg.static_steps:
        raise UsageError("--cuda-graphs does not support conditional specs yet (hint: train without it)")
    if images.labels is None:
        raise UsageError(f"{source}: has no class labels, but the spec is conditional (hint: make a cache with "
                         "`progan-zoo dataset SRC OUT --labels folders|builtin|FILE`, or train from class folders)")
    got = images.labels
    if got.label_size != cond.label_size:
        raise UsageError(f"{source}: has {got.label_size} classes, the spec's conditioning.label_size is "
                         f"{cond.label_size} (hint: make them equal)")
    if cond.class_names is not None and list(cond.class_names) != got.class_names:
        raise UsageError(f"{source}: its classes are {', '.join(got.class_names)}, the spec's class_names "
                         f"{', '.join(cond.class_names)} (hint: list the data's classes in its order)")
    return torch.from_numpy(np.array(got.indices))


def train(cfg: TrainConfig, parent: "Parent | None" = None) -> Path:
    """Train a spec progressively; returns the run directory. Raises UserError on bad input (a run
    directory that holds another run or is locked by another process among them), RunFailure on a
    non-finite loss or a failed write (after which the last good checkpoint is still there to resume
    from). SIGINT/SIGTERM end the run early with a checkpoint (``interrupt.py``). ``parent``: the weights to
    start from (``zoo.finetune.Parent``, opened by the caller for ``cfg.init_from``)."""
    info = init_distributed(cfg.device)
    finished = False
    try:
        with ExitStack() as held:  # the run directory's lock, released however the run ends
            out = Run(cfg, info, held, parent).train()
        finished = True
        return out
    finally:
        shutdown(info, finished)


class Run:
    """One training run: its networks, data, counters and run directory, and the loop's steps as methods."""

    def __init__(self, cfg: TrainConfig, info: DistInfo, held: ExitStack | None = None,
                 parent: "Parent | None" = None) -> None:
        """``held``: where the run directory's lock goes (``train`` releases it at the end); without it
        the directory is only checked (a Run built to inspect, not to train). ``parent``: a saved model
        to start from (``--init-from``; ``zoo.finetune.Parent``): its weights, at its stage of the schedule."""
        self.cfg, self.info = cfg, info
        device = self.device = info.device

        if parent is not None and cfg.resume:
            raise UsageError("--init-from starts a new run and --resume continues one; give one of them (a resumed "
                             "fine-tuning run keeps its parent)")
        # What to resume, which spec. A run directory that stopped before its first checkpoint is
        # started again from the beginning with the settings it recorded (rundir.py: no dead ends).
        self.restart = restart = rundir.never_checkpointed(cfg.resume) if cfg.resume else None
        self.resume = resume = ckpt_io.load_checkpoint(cfg.resume) if cfg.resume and restart is None else None
        resume_run = resume.path.parent.parent if resume else restart.run_dir if restart else None
        self.seed = resume.state.seed if resume else restart.seed if restart and restart.seed is not None else cfg.seed
        spec_path = cfg.spec or (str(restart.spec) if restart else str(resume_run / "spec.yaml") if resume_run else None)
        if spec_path is None:
            raise UsageError("no spec given (hint: progan-zoo train SPEC, or --resume RUN_DIR)")
        # The spec's cost is checked against the device's free memory before any weight is made.
        def preflight(c: Any) -> None:
            until = float(cfg.kimg if cfg.kimg is not None else c.spec.training.total_kimg)
            self.preflight = check_memory(c.graph, c.spec, device, info.world, until_kimg=until)
            torch.manual_seed(self.seed)  # The initial weights: the same on every rank.

        self.compiled = compiled = compile_spec(spec_path, before_build=preflight)
        self.spec = spec = compiled.spec
        if resume and resume.state.spec_sha256 != compiled.sha256:
            raise UsageError(f"{spec_path}: differs from the spec the checkpoint {resume.path} was trained with "
                             f"(sha256 {resume.state.spec_sha256[:12]}...) (hint: resume with the run's own spec.yaml, "
                             "or leave SPEC out)")
        if restart and cfg.spec and load(restart.spec).sha256 != compiled.sha256:
            raise UsageError(f"{spec_path}: differs from the spec {restart.run_dir} was started with (hint: leave SPEC "
                             f"out to start it again with its own spec.yaml, or use --out NEW_DIR)")
        check_precision(cfg, device)
        check_graphs(cfg, device, info.world)
        check_metric_options(cfg.metrics, spec.data.resolution)
        self.run_dir = Path(cfg.out) if cfg.out else resume_run if resume_run is not None else \
            Path("runs") / f"{spec.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        # Refuse a directory that holds another run, or that another process trains into, before any
        # weights are read (the other process may be pruning them) or anything is written (rundir.py).
        resume_ckpt = resume.path if resume else None
        # A resumed run keeps its own length and tick unless asked otherwise: `--resume RUN` after a
        # Ctrl-C continues the run that was cut, not the spec's default one.
        prior = rundir.prior_settings(resume_run) if resume_run is not None else {}
        # The lock records a new run's settings: a kill before spec.yaml and run.json are written is no dead end.
        record = None if resume else {
            "spec": str(Path(spec_path).resolve()), "seed": self.seed,
            "data": cfg.data or (restart.data if restart else None),
            "mirror": cfg.mirror if cfg.mirror is not None else restart.mirror if restart else None,
            "total_kimg": cfg.kimg or prior.get("total_kimg"), "tick_kimg": cfg.tick_kimg or prior.get("tick_kimg")}
        if held is None:
            self.on_main(lambda: rundir.check_target(self.run_dir, resume_ckpt, restart))
        else:
            lock = self.on_main(lambda: rundir.claim(self.run_dir, resume_ckpt, restart, record))
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
                         conditional_loss(make_loss(spec.training.loss), spec), info, amp=cfg.amp == "bf16", channels_last=cfg.channels_last,
                         final_resolution=spec.architecture.resolution, ema_decay=spec.training.g_ema_decay,
                         amp_penalty=cfg.amp_penalty, lazy_penalty=cfg.lazy_penalty, shared_fakes=cfg.shared_fakes)
        # --cuda-graphs: the D and G steps on static buffers, captured per phase (graphs.py). The internal
        # static_steps switch runs the same code without capture (the CPU tests).
        self.static = StaticSteps(self.nets, capture=cfg.cuda_graphs) if cfg.cuda_graphs or cfg.static_steps else None
        self.sched = Schedule(spec)
        check_minibatches(spec, self.sched, info.world)
        # A fine-tuning run starts where its parent stands in the schedule (its stage and fade), and a
        # resumed one stays there: the schedule is read at offset + this run's kimg.
        self.init_from = rundir.prior_init_from(resume_run) if resume_run is not None else None
        if restart is not None and self.init_from is not None:
            raise UsageError(f"{resume_run}: a fine-tuning run that stopped before its first checkpoint; start it again "
                             f"with `progan-zoo train SPEC --init-from {self.init_from.get('model')} --out NEW_DIR`")
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
            mirror = resume.state.rng["data_sampler"]["mirror"] if resume else \
                restart.mirror if restart and restart.mirror is not None else spec.training.mirror_augment
        self.mirror = mirror
        self.data_source = (cfg.data or (resume.state.data if resume else None) or (restart.data if restart else None)
                            or spec.data.source)
        self.images = open_dataset(self.data_source, spec.data.resolution, spec.data.channels,
                                   progress=cfg.progress and info.is_main, crop=spec.data.crop,
                                   labels=spec.conditioning is not None)
        # Conditional specs: the data set's labels (G's labels are drawn from them), checked against the spec.
        self.labels = check_labels(spec, self.images, self.data_source, cfg)
        self.loader = RealLoader(self.images, self.seed, mirror)
        self.gen = torch.Generator().manual_seed(self.seed)   # latents and mixing factors of every step
        self.fixed_z = torch.from_numpy(
            np.random.default_rng([self.seed, 7]).standard_normal((cfg.grid, G.z_dim)).astype(np.float32))
        # The sample grid of a conditional run: classes in turn, so each class keeps its latents.
        self.fixed_labels = (torch.arange(cfg.grid) % G.label_size) if G.label_size else None

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

    def tidy_run_dir(self) -> None:
        """Rank 0, before the first write: a run started again from the beginning replaces what it wrote
        before it stopped; a run resumed in its own directory drops what was written after the checkpoint."""
        if self.restart is not None:
            same = self.run_dir.resolve() == self.restart.run_dir.resolve()
            gone = rundir.clear_outputs(self.run_dir) if same else []
            print(f"progan-zoo train: {self.restart.run_dir} stopped before its first checkpoint; starting it again from "
                  f"the beginning with its recorded settings (seed {self.seed}, data {self.data_source}, "
                  f"{self.total_kimg:g} kimg)" + (f", replacing {', '.join(gone)}" if gone else ""), file=sys.stderr)
        elif self.resume is not None and self.run_dir.resolve() == self.resume.path.parent.parent.resolve():
            rundir.trim_to_checkpoint(self.run_dir, self.resume.state.tick, self.resume.state.nimg)

    def write_run_json(self) -> None:
        cfg, spec = self.cfg, self.spec
        # spec.yaml first, each file whole or not at all: a run killed here can be started again (rundir.py).
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not (self.run_dir / "spec.yaml").exists():
            with replaced_atomically(self.run_dir / "spec.yaml") as tmp:
                tmp.write_text(self.compiled.raw.text)
        run_json = {
            "spec_name": spec.name, "spec_revision": spec.revision, "spec_sha256": self.compiled.sha256,
            "spec_resolved_sha256": self.compiled.resolved_sha256, "data": str(self.data_source),
            "data_images": len(self.images), "seed": self.seed, "mirror": self.mirror,
            "command": cfg.argv or sys.argv, "world_size": self.info.world, "device": self.device.type,
            "total_kimg": self.total_kimg, "tick_kimg": self.tick_kimg, "memory_estimate": self.preflight.message(),
            "resumed_from": str(self.resume.path) if self.resume else None, "init_from": self.init_from,
            "config": asdict(cfg), "restarted": self.restart is not None,
            "versions": versions(), "started": datetime.now().isoformat(timespec="seconds"),
        }
        with replaced_atomically(self.run_dir / "run.json") as tmp:
            tmp.write_text(json.dumps(run_json, indent=2) + "\n")
        (self.run_dir / "samples").mkdir(exist_ok=True)

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
        labels = self.fixed_labels.split(64) if self.fixed_labels is not None else [None] * len(self.fixed_z.split(64))
        imgs = torch.cat([G_ema(z.to(self.device), phase.stage, phase.alpha,
                                labels=None if y is None else y.to(self.device))
                          for z, y in zip(self.fixed_z.split(64), labels)])
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
        real_labels = None
        for r in range(training.d_repeats):
            reals, real_labels = labeled_real_batch(self.loader, phase, n)
            real_labels = real_labels if self.labels is not None else None
            z, mix = draw(self.gen, phase, z_dim, self.info, n.loss.needs_mix, on_device=self.static is None)
            if n.shared_fakes and r == training.d_repeats - 1:
                # Opt-in: one G forward (with its graph) serves this D step (detached) and the G step
                # (a conditional G step then uses the reals' labels).
                with n.autocast():
                    fakes = n.fmt(n.G(z, phase.stage, phase.alpha, labels=real_labels))   # [NCHW]
            # The D step's index in the run (G steps are checkpointed, so a resumed run agrees).
            d_index = self.step * training.d_repeats + r
            if self.static is not None:
                stats.update(self.static.d_step(reals, z, mix, phase, gp_weight=n.penalty_weight(d_index)))  # EMA included
            else:
                stats.update(d_step(n, reals, z, mix, phase, gp_weight=n.penalty_weight(d_index), fakes=fakes,
                                    labels=real_labels))
                ema_update(n.G_ema, n.G, n.ema_decay)
            self.nimg += phase.minibatch
        g_labels = real_labels
        if fakes is None:
            z, _ = draw(self.gen, phase, z_dim, self.info, False, on_device=self.static is None)
            if self.labels is not None:
                g_labels = draw_labels(self.gen, self.labels, phase.minibatch, self.info.rank,
                                       self.info.world).to(self.device)
        if self.static is not None:
            stats.update(self.static.g_step(z, phase))
        else:
            stats.update(g_step(n, z, phase, fakes=fakes, labels=g_labels))
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
            self.tidy_run_dir()
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
