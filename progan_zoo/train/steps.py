"""One training step, as the eager trainer and the CUDA-graph steps (``graphs.StaticSteps``) both run it.

``Nets`` holds what a step touches; ``real_batch`` and ``draw`` make its inputs for the global
minibatch; ``d_loss`` and ``g_loss`` are the forward passes and losses both step kinds share;
``d_step`` / ``g_step`` add the backward, the gradient all-reduce and Adam (the graphs replace those
with their own static Adam); ``ema_update`` is the official Gs update after every D step.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from progan_zoo.data import RealLoader
from progan_zoo.nn import downsample2x, upsample2x

from .dist import DistInfo, all_reduce_grads
from .schedule import Phase


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


def fade_reals(x: torch.Tensor, phase: Phase) -> torch.Tensor:
    """Official ``process_reals``: lerp(x, upsample(downsample(x)), frac(lod)), i.e. alpha * x +
    (1 - alpha) * the previous resolution's image shown at this size, exactly as G's output fades."""
    if not phase.fading:
        return x
    return torch.lerp(x, upsample2x(downsample2x(x)), 1.0 - phase.alpha)


def real_batch(loader: RealLoader, phase: Phase, nets: Nets) -> torch.Tensor:
    """This rank's share of the next global minibatch of real images, in [-1, 1], faded."""
    return labeled_real_batch(loader, phase, nets)[0]


def labeled_real_batch(loader: RealLoader, phase: Phase, nets: Nets) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``real_batch`` and the images' class indices [N] on the device (None when the data has no labels)."""
    info = nets.dist
    u8, labels = loader.next_labeled(phase.resolution, phase.minibatch, info.rank, info.world)  # [NCHW] uint8
    x = torch.from_numpy(u8).to(info.device, non_blocking=True).float()
    x = x.mul_(2.0 / 255.0).sub_(1.0)                                               # official drange [0,255] -> [-1,1]
    y = torch.from_numpy(labels).to(info.device) if labels is not None else None
    return nets.fmt(fade_reals(x, phase)), y


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


def d_loss(nets: Nets, reals: torch.Tensor, z: torch.Tensor, mix: torch.Tensor | None, stage: int, alpha: Any,
           norm_scale: float, gp_weight: float, fakes: torch.Tensor | None = None, cache: bool = True,
           labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """D's loss and its statistics on ``reals`` and G's images of ``z`` (``fakes`` when the caller has them,
    else drawn here without a graph). ``cache=False`` inside a CUDA graph capture (see ``Nets.autocast``).
    ``labels`` (conditional specs): the reals' classes; the fakes are generated with them (official)."""
    G, D = nets.G, nets.D
    D.requires_grad_(True)
    if fakes is None:
        with torch.no_grad(), nets.autocast(cache):
            fakes = nets.fmt(G(z, stage, alpha, labels=labels).float())                    # [NCHW]
    with nets.autocast(cache):
        return nets.loss.d_loss(lambda x: D(x, stage, alpha), reals, fakes.detach().float(), mix,
                                norm_scale=norm_scale, gp_weight=gp_weight, gp_autocast=nets.amp_penalty,
                                **_labeled(labels))


def _labeled(labels: torch.Tensor | None) -> dict:
    # Only the conditional loss (acgan.ACGAN) takes labels; the unconditional losses keep their signature.
    return {} if labels is None else {"labels": labels}


@contextmanager
def d_frozen(nets: Nets) -> Iterator[None]:
    """D's weights take no gradient inside (the G step: the official G_opt covers G's variables)."""
    nets.D.requires_grad_(False)
    try:
        yield
    finally:
        nets.D.requires_grad_(True)


def g_loss(nets: Nets, z: torch.Tensor | None, stage: int, alpha: Any, fakes: torch.Tensor | None = None,
           cache: bool = True, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """G's loss and its statistics on fresh latents ``z``, or on ``fakes`` already generated with their
    graph (``--shared-fakes``). Call it, and the backward, inside ``d_frozen``. ``labels`` (conditional
    specs): the classes the fakes are generated for."""
    G, D = nets.G, nets.D
    with nets.autocast(cache):
        if fakes is None:
            fakes = nets.fmt(G(z, stage, alpha, labels=labels))                            # [NCHW]
        return nets.loss.g_loss(lambda x: D(x, stage, alpha), fakes, **_labeled(labels))


def d_step(nets: Nets, reals: torch.Tensor, z: torch.Tensor, mix: torch.Tensor | None, phase: Phase,
           gp_weight: float = 1.0, fakes: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
    """One D step. ``gp_weight``: the penalty's factor (0 skips it: lazy regularisation); ``fakes``: G's
    output for ``z`` when the caller already has it (``--shared-fakes``), else drawn here without a graph.
    ``labels``: the reals' classes (conditional specs)."""
    loss, stats = d_loss(nets, reals, z, mix, phase.stage, phase.alpha, nets.norm_scale(phase), gp_weight, fakes,
                         labels=labels)
    nets.opt_D.zero_grad(set_to_none=True)
    loss.backward()
    all_reduce_grads(nets.D.parameters(), nets.dist)
    nets.opt_D.step()
    return stats


def g_step(nets: Nets, z: torch.Tensor | None, phase: Phase, fakes: torch.Tensor | None = None,
           labels: torch.Tensor | None = None) -> dict:
    """One G step on fresh latents ``z``, or on ``fakes`` already generated with their graph (shared).
    ``labels``: the classes the fakes are generated for (conditional specs)."""
    with d_frozen(nets):
        loss, stats = g_loss(nets, z, phase.stage, phase.alpha, fakes, labels=labels)
        nets.opt_G.zero_grad(set_to_none=True)
        loss.backward()
        all_reduce_grads(nets.G.parameters(), nets.dist)
        nets.opt_G.step()
    return stats


@torch.no_grad()
def ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, decay: float) -> None:
    """Official ``setup_as_moving_average_of``: ema <- lerp(G, ema, decay) for every weight.
    The fade weight is not averaged: samples use the current alpha (the official copies ``lod`` with beta 0)."""
    ema_p, g_p = list(G_ema.parameters()), list(G.parameters())
    torch._foreach_lerp_(ema_p, g_p, 1.0 - decay)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)
