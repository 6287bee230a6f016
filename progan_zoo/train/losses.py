"""GAN losses, looked up by the spec's ``training.loss.name`` in the ``LOSSES`` registry.

Each loss gives per-minibatch means of the official per-sample losses (``loss.py`` of the official
TF code averages with ``reduce_mean`` before taking gradients). ``D`` is any callable from images
[N, C, H, W] to scores [N, 1]; the trainer binds the stage and fade weight.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch
import torch.nn.functional as F

from progan_zoo.compiler.schema import Loss as LossConfig
from progan_zoo.registry import Registry

DFn = Callable[[torch.Tensor], torch.Tensor]
Stats = dict[str, torch.Tensor]


class _LossRegistry(Registry[type]):
    """Loss classes; each learns the name it is registered under (``cls.name``)."""

    def add(self, name: str, item: type, description: str = "") -> type:
        item.name = name
        return super().add(name, item, description)


LOSSES = _LossRegistry("loss")


def gradient_penalty(D: DFn, reals: torch.Tensor, fakes: torch.Tensor, mix: torch.Tensor,
                     target: float = 1.0, norm_scale: float = 1.0, autocast: bool = False) -> torch.Tensor:
    """Per-sample (norm_scale * ||grad_x D(x_hat)|| - target)^2 at x_hat = lerp(reals, fakes, mix), in fp32.

    The WGAN-GP penalty (Gulrajani et al. 2017) as the official ``D_wgangp_acgan`` computes it.
    ``norm_scale`` = stage / final resolution gives the official penalty: the official D takes every
    image nearest-upsampled by f = final / stage and average-pools it back, so its gradient with
    respect to the full-resolution image is the stage gradient spread over f^2 pixels, divided by
    f^2: a norm f times smaller.
    Autocast is switched off so the double backward runs in full precision whatever ``--amp`` says,
    unless ``autocast`` (``--amp-penalty``, opt-in) keeps the caller's autocast for it too.
    The graph is kept (``create_graph``) so the penalty trains D.
    """
    with nullcontext() if autocast else torch.autocast(device_type=reals.device.type, enabled=False):
        mixed = torch.lerp(reals.float(), fakes.float().detach(), mix.float()).requires_grad_(True)  # [NCHW]
        scores = D(mixed).float()                                                                # [N1]
        (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)                   # [NCHW]
        norms = grads.square().sum(dim=(1, 2, 3)).sqrt() * norm_scale                             # [N]
        return (norms - target).square()


@LOSSES.register("wgan_gp")
class WGANGP:
    """The paper's loss: WGAN-GP (lambda, target) plus the drift term epsilon * D(real)^2 (appendix A.1).

    The penalty is scaled by lambda / target^2, as in the official code, so that a target other
    than 1 (750 for CIFAR-10) keeps the same balance.
    """

    needs_mix = True

    def __init__(self, cfg: LossConfig) -> None:
        self.lam, self.target, self.drift = cfg.gp_lambda, cfg.gp_target, cfg.drift
        self.gp_at = cfg.gp_at

    def norm_scale(self, stage_resolution: int, final_resolution: int) -> float:
        """Factor from the stage-resolution gradient norm to the penalised one (``gp_at``)."""
        return stage_resolution / final_resolution if self.gp_at == "final" else 1.0

    def d_loss(self, D: DFn, reals: torch.Tensor, fakes: torch.Tensor, mix: torch.Tensor,
               norm_scale: float = 1.0, gp_weight: float = 1.0, gp_autocast: bool = False) -> tuple[torch.Tensor, Stats]:
        """``gp_weight``: factor on the penalty (0: skipped this step; k: lazy regularisation every k steps)."""
        real = D(reals).float()                                     # [N1]
        fake = D(fakes).float()  # [N1]
        loss = (fake - real).squeeze(1)                             # [N]
        stats = {"D/real": real.mean().detach(), "D/fake": fake.mean().detach()}
        if self.lam > 0 and gp_weight > 0:
            gp = gradient_penalty(D, reals, fakes, mix.view(-1, 1, 1, 1), self.target, norm_scale, gp_autocast)
            loss = loss + gp * (gp_weight * self.lam / self.target ** 2)
            stats["D/gp"] = gp.mean().detach()
        if self.drift > 0:
            loss = loss + self.drift * real.squeeze(1).square()
        loss = loss.mean()
        stats["D/loss"] = loss.detach()
        return loss, stats

    def g_loss(self, D: DFn, fakes: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        loss = (-D(fakes).float()).mean()
        return loss, {"G/loss": loss.detach()}


def _scored_d_loss(D: DFn, reals: torch.Tensor, fakes: torch.Tensor,
                   objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, Stats]:
    """D's loss for the losses without a penalty: ``objective(real, fake)`` of D's fp32 scores, with
    the statistics the trainer logs for D."""
    real = D(reals).float()                                     # [N1]
    fake = D(fakes).float()                                     # [N1]
    loss = objective(real, fake)
    return loss, {"D/loss": loss.detach(), "D/real": real.mean().detach(), "D/fake": fake.mean().detach()}


class _Unpenalized:
    """What the losses without a gradient penalty share: no options, no mix factors, no norm scale."""

    needs_mix = False

    def __init__(self, cfg: LossConfig) -> None:
        pass

    def norm_scale(self, stage_resolution: int, final_resolution: int) -> float:
        return 1.0


@LOSSES.register("lsgan")
class LSGAN(_Unpenalized):
    """Least squares GAN (Mao et al. 2017) with targets real 1, fake 0; G aims for 1."""

    def d_loss(self, D: DFn, reals: torch.Tensor, fakes: torch.Tensor, mix: torch.Tensor | None = None,
               norm_scale: float = 1.0, gp_weight: float = 1.0, gp_autocast: bool = False) -> tuple[torch.Tensor, Stats]:
        return _scored_d_loss(D, reals, fakes, lambda real, fake: 0.5 * ((real - 1).square() + fake.square()).mean())

    def g_loss(self, D: DFn, fakes: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        loss = 0.5 * (D(fakes).float() - 1).square().mean()
        return loss, {"G/loss": loss.detach()}


@LOSSES.register("logistic_ns")
class LogisticNS(_Unpenalized):
    """The original GAN loss with the non-saturating G objective (Goodfellow et al. 2014)."""

    def d_loss(self, D: DFn, reals: torch.Tensor, fakes: torch.Tensor, mix: torch.Tensor | None = None,
               norm_scale: float = 1.0, gp_weight: float = 1.0, gp_autocast: bool = False) -> tuple[torch.Tensor, Stats]:
        return _scored_d_loss(D, reals, fakes, lambda real, fake: (F.softplus(fake) + F.softplus(-real)).mean())

    def g_loss(self, D: DFn, fakes: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        loss = F.softplus(-D(fakes).float()).mean()
        return loss, {"G/loss": loss.detach()}


def make_loss(cfg: LossConfig):
    """The loss object the spec's ``training.loss`` names."""
    return LOSSES.get(cfg.name)(cfg)
