"""The settings and schedules of projection (``tools/project.py``), apart so the CLI can show the defaults
without importing torch (``progan-zoo --help`` stays light)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from progan_zoo.errors import UsageError


@dataclass
class ProjectionSettings:
    """The knobs of ``project``; defaults follow StyleGAN2-ADA's projector where one applies."""

    steps: int = 300                 # optimisation steps (SG2-ADA: 1000 for 1024 px faces; 32 px digits need fewer)
    lr: float = 0.1                  # peak Adam learning rate (SG2-ADA: 0.1)
    lr_rampup: float = 0.05          # fraction of steps with a linear ramp up (SG2-ADA: 0.05)
    lr_rampdown: float = 0.25        # fraction of steps with a half-cosine ramp down (SG2-ADA: 0.25)
    noise: float = 0.05              # initial latent noise, per unit of z's std (SG2-ADA: 0.05)
    noise_ramp: float = 0.75         # noise reaches 0 at this fraction of the steps (SG2-ADA: 0.75)
    starts: int = 16                 # random latents tried for the start, best kept
    w_pixel: float = 1.0             # weight of pixel MSE on [-1, 1] images
    w_structure: float = 1.0         # weight of 1 - multi-scale SSIM
    w_feature: float = 1.0           # weight of D's feature distance (used only with a D)
    truncation: float | None = None  # psi: keep z inside [-psi, psi]
    seed: int = 0

    def check(self) -> "ProjectionSettings":
        from progan_zoo.data.latents import check_psi

        if self.steps < 0 or self.starts < 1:
            raise UsageError(f"projection: steps must be >= 0 and starts >= 1, got {self.steps} and {self.starts}")
        for name in ("lr", "noise", "w_pixel", "w_structure", "w_feature"):
            if not getattr(self, name) >= 0:
                raise UsageError(f"projection: {name} must be >= 0, got {getattr(self, name)}")
        if not (0 < self.lr_rampup <= 1 and 0 < self.lr_rampdown <= 1 and 0 < self.noise_ramp <= 1):
            raise UsageError("projection: lr_rampup, lr_rampdown and noise_ramp are fractions in (0, 1]")
        self.truncation = check_psi(self.truncation, "projection truncation")
        return self


# ------------------------------------------------------------------------------------------ schedules
def learning_rate(t: float, s: ProjectionSettings) -> float:
    """Learning rate at progress t in [0, 1]: linear ramp up, half-cosine ramp down (SG2-ADA's shape)."""
    down = min(1.0, (1.0 - t) / s.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(down * math.pi)
    return s.lr * ramp * min(1.0, t / s.lr_rampup)


def noise_scale(t: float, s: ProjectionSettings) -> float:
    """Std of the noise added to z at progress t: quadratic decay to 0 at ``noise_ramp`` (SG2-ADA's shape)."""
    return s.noise * max(0.0, 1.0 - t / s.noise_ramp) ** 2
