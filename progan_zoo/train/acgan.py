"""The AC-GAN terms of conditional training (official ``loss.D_wgangp_acgan`` / ``G_wgan_acgan``).

A conditional D outputs ``[N, 1 + label_size]``: the score, then label logits. ``ACGAN`` wraps the
spec's GAN loss (``losses.py``): the wrapped loss sees D's score column only, and the softmax
cross-entropy of the label logits against the labels is added, weighted by the spec's
``conditioning.cond_weight``:

- D: ``base + cond_weight * (mean CE(real logits, labels) + mean CE(fake logits, labels))``, where the
  fakes were generated with the reals' labels (the official D step feeds G the minibatch's labels);
- G: ``base + cond_weight * mean CE(fake logits, labels)``, with labels drawn from the data set's
  label distribution (official ``training_set.get_random_labels_tf``: the labels of uniformly drawn
  images).

The official per-sample loss adds [N, 1] scores to [N] penalties, a broadcast to [N, N] whose mean is
the sum of the terms' means, so every term is averaged on its own here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .losses import DFn, Stats


def label_penalty(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample softmax cross-entropy (official ``softmax_cross_entropy_with_logits_v2``) in fp32;
    ``labels`` are class indices [N] or label vectors [N, L] (one-hot or soft)."""
    logits = logits.float()
    if labels.dim() == 2:
        return -(labels.float() * F.log_softmax(logits, dim=1)).sum(dim=1)
    return F.cross_entropy(logits, labels.long(), reduction="none")


class _Scores:
    """D as the wrapped loss sees it: images -> scores [N, 1]. Remembers the label logits of the
    images it was called on, by identity, so the AC term reuses D's forward passes."""

    def __init__(self, D: DFn) -> None:
        self.D = D
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.D(x)                                              # [N, 1+L]
        self.seen.append((x, out[:, 1:]))
        return out[:, :1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        for seen, logits in self.seen:
            if seen is x:
                return logits
        return self.D(x)[:, 1:]   # the wrapped loss did not score x itself


class ACGAN:
    """A GAN loss plus the official AC-GAN label terms; same interface as the wrapped loss, with labels."""

    def __init__(self, base: Any, cond_weight: float) -> None:
        self.base, self.cond_weight = base, float(cond_weight)
        self.name = f"{base.name}+acgan"
        self.needs_mix = base.needs_mix

    def norm_scale(self, stage_resolution: int, final_resolution: int) -> float:
        return self.base.norm_scale(stage_resolution, final_resolution)

    def d_loss(self, D: DFn, reals: torch.Tensor, fakes: torch.Tensor, mix: torch.Tensor | None = None, *,
               labels: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, Stats]:
        scores = _Scores(D)
        loss, stats = self.base.d_loss(scores, reals, fakes, mix, **kw)
        real = label_penalty(scores.logits(reals), labels).mean()
        fake = label_penalty(scores.logits(fakes), labels).mean()
        loss = loss + self.cond_weight * (real + fake)
        stats.update({"D/loss": loss.detach(), "D/label_real": real.detach(), "D/label_fake": fake.detach()})
        return loss, stats

    def g_loss(self, D: DFn, fakes: torch.Tensor, *, labels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        scores = _Scores(D)
        loss, stats = self.base.g_loss(scores, fakes)
        fake = label_penalty(scores.logits(fakes), labels).mean()
        loss = loss + self.cond_weight * fake
        stats.update({"G/loss": loss.detach(), "G/label_fake": fake.detach()})
        return loss, stats


def draw_labels(gen: torch.Generator, labels: torch.Tensor, minibatch: int, rank: int = 0,
                world: int = 1) -> torch.Tensor:
    """Labels for G's fakes, as the official ``get_random_labels``: the labels of ``minibatch`` images
    drawn uniformly with replacement (so the data set's class frequencies), from the run's step
    generator (its state is in every checkpoint); drawn for the global minibatch, this rank's share."""
    idx = torch.randint(len(labels), (minibatch,), generator=gen)
    return labels[idx][rank::world]


def conditional_loss(loss: object, spec) -> object:
    """The spec's loss, with the official AC-GAN label terms when the spec is conditional."""
    return ACGAN(loss, spec.conditioning.cond_weight) if spec.conditioning is not None else loss
