"""What a training run shows of itself at each tick, besides ``log.jsonl`` and the sample grids:

- metrics measured during training (``--metrics swd --metrics-ticks N``): every N ticks and at the
  end, G_ema at the current stage and fade weight is scored against the real images. Its output is
  shown at the final resolution (nearest upsampling, as the sample grids and the official networks
  do), so one curve spans every stage. The numbers go into the tick record as ``metrics/<name>``
  fields and, with their settings, into ``metrics.jsonl`` (``progan_zoo.metrics.registry``).
- TensorBoard event files in the run directory (``--tensorboard auto``: when the ``tensorboard``
  package is installed, ``pip install 'progan-zoo[tensorboard]'``): every numeric field of the tick
  record as a scalar against images shown (losses, penalty, images/s, lod, alpha, learning rate,
  metrics) and the sample grid as an image.

The run calls ``Monitor.tick`` once per tick on rank 0 and ``Monitor.close`` at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from progan_zoo.errors import UsageError

from .plot import METRIC_PREFIX

TENSORBOARD_MODES = ("auto", "on", "off")
NOT_SCALARS = {"tick", "kimg", "step", "time"}


class AtPhase(torch.nn.Module):
    """``G(z) -> [N, C, size, size]`` of a growable generator at one stage and fade weight, the shape
    of generator a metric takes (``z_dim``, ``resolution``)."""

    def __init__(self, G: torch.nn.Module, stage: int, alpha: float, size: int) -> None:
        super().__init__()
        self.G, self.stage, self.alpha = G, stage, alpha
        self.z_dim, self.resolution = G.z_dim, size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.G(z, self.stage, self.alpha)                                   # [NCHW] at the stage's size
        if x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="nearest")
        return x


def check_metric_options(names: list[str], resolution: int) -> None:
    """Unknown metric names, and SWD on images smaller than it measures, are usage errors."""
    from progan_zoo.metrics.registry import METRICS

    for name in names:
        if name not in METRICS:
            raise UsageError(f"--metrics {name}: unknown metric (hint: one of {', '.join(METRICS.names())})")
    if "swd" in names and resolution < 16:
        raise UsageError(f"--metrics swd: the spec's final resolution is {resolution}px; SWD needs at least 16px "
                         "(hint: drop swd for this spec)")


def open_tensorboard(run_dir: Path, mode: str):
    """A ``SummaryWriter`` on the run directory, or None (mode off, or auto without tensorboard)."""
    if mode not in TENSORBOARD_MODES:
        raise UsageError(f"--tensorboard {mode}: unknown (hint: one of {', '.join(TENSORBOARD_MODES)})")
    if mode == "off":
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if mode == "on":
            raise UsageError("--tensorboard on needs the tensorboard package "
                             "(hint: pip install 'progan-zoo[tensorboard]')") from None
        return None
    return SummaryWriter(log_dir=str(run_dir))


def scalar_tag(key: str) -> str:
    """TensorBoard tag of a tick-record field: ``D/loss`` and ``metrics/swd_avg`` as they are, the
    rest under ``progress/`` (``progress/images_per_s``, ``progress/lod``)."""
    return key if "/" in key else f"progress/{key}"


class Monitor:
    """Metrics every N ticks and TensorBoard event files for one run (rank 0 only)."""

    def __init__(self, run_dir: Path, metrics: list[str], every: int, num: int, seed: int, tensorboard: str) -> None:
        self.run_dir, self.metrics, self.every, self.num, self.seed = run_dir, list(metrics), max(1, every), num, seed
        self.writer = open_tensorboard(run_dir, tensorboard)

    @property
    def tensorboard(self) -> bool:
        return self.writer is not None

    @torch.no_grad()
    def measure(self, tick: int, done: bool, G_ema: torch.nn.Module, stage: int, alpha: float,
                reals: np.ndarray, kimg: float) -> dict[str, float]:
        """Score G_ema against ``reals`` (uint8 [N, C, R, R] at the final resolution) when this tick is a
        metrics tick; returns the ``metrics/<name>`` fields for the tick record (empty otherwise)."""
        if not self.metrics or not (tick % self.every == 0 or done):
            return {}
        from progan_zoo.metrics.registry import MetricContext, calc_metric, report_metric

        num = min(self.num, len(reals))
        device = next(G_ema.parameters()).device
        gen = AtPhase(G_ema, stage, alpha, reals.shape[-1]).eval()     # G_ema stays in eval mode after the metric
        real = torch.from_numpy(np.array(reals[:num]))               # a writable copy (the levels are read-only)
        fields: dict[str, float] = {}
        for name in self.metrics:
            ctx = MetricContext(generator=gen, real=real, num=num, seed=self.seed, device=device)
            result = calc_metric(name, ctx)
            report_metric(result, self.run_dir, kimg=kimg, tick=tick, stage=stage, alpha=alpha, during_training=True)
            for key, value in result["results"].items():
                if isinstance(value, (int, float)):
                    fields[f"{METRIC_PREFIX}{key}"] = float(value)
        return fields

    def write(self, record: dict[str, Any], picture: np.ndarray | None, nimg: int) -> None:
        """The tick's numbers and sample grid (uint8 [H, W, C]) into the event file, at step = images shown."""
        if self.writer is None:
            return
        for key, value in record.items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(scalar_tag(key), value, global_step=nimg)
        if picture is not None:
            rgb = np.repeat(picture, 3, axis=-1) if picture.shape[-1] == 1 else picture
            self.writer.add_image("samples", rgb, global_step=nimg, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
