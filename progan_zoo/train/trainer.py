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

import json
import math
import sys
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from progan_zoo.errors import RunFailure

from . import checkpoint as ckpt_io
from .acgan import draw_labels
from .config import TrainConfig
from .dist import all_reduce_mean, barrier, init_distributed, shutdown
from .monitor import Monitor
from .optim import lod_crossed, reset_optimizers, set_learning_rate
from .runstate import RunState
from .schedule import Phase
from .steps import d_step, draw, ema_update, g_step, labeled_real_batch

if TYPE_CHECKING:  # a type only: the CLI opens the parent (zoo sits beside train, not below it)
    from progan_zoo.zoo.finetune import Parent


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


class Run(RunState):
    """One training run: the loop's steps as methods, on the state that ``RunState`` sets up (runstate.py)."""

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
