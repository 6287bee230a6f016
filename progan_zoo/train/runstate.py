"""What a training run holds, and how it is set up and written: ``RunState`` (``trainer.Run`` adds the loop).

Setting up follows the command: what to resume or start again (a run directory that stopped before
its first checkpoint restarts with its recorded settings, rundir.py), which spec (compiled after the
memory preflight), the run directory claimed, then the networks, optimizers and loss, the schedule,
a fine-tuning parent's place in it, the data and the random streams (seeded by ``--seed``, the same
on every rank), and the counters, from the checkpoint when resuming. Written out: the run's
spec.yaml and run.json, checkpoints (``checkpoint.TrainState`` is what state.json holds) and the
sample grids drawn from fixed latents.
"""

from __future__ import annotations

import copy
import json
import platform
import sys
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from progan_zoo import __version__
from progan_zoo.compiler import compile_spec, load
from progan_zoo.data import RealLoader, open_dataset
from progan_zoo.errors import RunFailure, UsageError, UserError
from progan_zoo.fsutil import replaced_atomically

from . import checkpoint as ckpt_io
from . import rundir
from .acgan import conditional_loss
from .checkpoint import TrainState, rng_state, set_rng_state
from .checks import check_graphs, check_labels, check_minibatches, check_precision
from .config import TrainConfig, default_tick_kimg
from .dist import DistInfo, all_reduce_mean, broadcast_module
from .graphs import StaticSteps
from .interrupt import StopRequests
from .losses import make_loss
from .monitor import check_metric_options
from .optim import make_optimizer
from .preflight import check_memory
from .samples import make_grid, save_png
from .schedule import Phase, Schedule, schedule_offset
from .steps import Nets

if TYPE_CHECKING:  # a type only: the CLI opens the parent (zoo sits beside train, not below it)
    from progan_zoo.zoo.finetune import Parent


def versions() -> dict:
    """The versions a run records (run.json, state.json): progan-zoo, torch, numpy, Python."""
    return {"progan_zoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


class RunState:
    """One training run's networks, data, random streams, counters and run directory, set up from its
    config, and its writes: run.json, checkpoints, sample grids."""

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
