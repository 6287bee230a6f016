"""What a generator is fed besides labels: seeded latents, and the truncation trick on them.

Latents are drawn on the CPU from a generator seeded with the given seed, so a seed gives the same
latents (and images) on every device.

The truncation trick for a z-only generator trades variety for quality by keeping latents near the mode.

ProGAN has no mapping network (no w to pull toward a mean), so truncation acts on z as BigGAN defines
it (Brock et al. 2019, section 3.1): every component with ``|z_i| > psi`` is redrawn from the standard
normal *conditioned on* ``|z_i| <= psi``; components already inside are kept, so a seed's image changes
only where its latent was extreme. Redrawing "until it falls inside" and drawing once from the truncated
normal by its inverse CDF give the same distribution; we use the inverse CDF (one draw, no loop, any
``psi > 0``). ``psi`` lies in (0, inf]; ``None`` or ``inf`` is off (the default everywhere). G
pixel-normalizes z (paper section 4.2), so only the direction counts: a small psi pushes every latent
toward the corners of the cube [-psi, psi]^Z, i.e. toward fewer, more typical directions.
"""

from __future__ import annotations

import math

import torch

from progan_zoo.errors import UsageError

#: the stream of the redraws, apart from the latents' own seed (a seeded sample stays reproducible)
_REDRAW_STREAM = 0x7275_6E63


def check_psi(psi: float | None, where: str = "truncation") -> float | None:
    """``psi`` if it is a valid threshold (a number > 0, or inf), ``None`` for off; else a UsageError."""
    if psi is None:
        return None
    try:
        value = float(psi)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {psi!r} is not a number; give psi > 0 (e.g. 0.7), or inf for no truncation") from None
    if math.isnan(value) or value <= 0:
        raise UsageError(f"{where}: psi must be > 0 (e.g. 0.7; inf turns truncation off), got {psi!r}")
    return None if math.isinf(value) else value


def truncate_latents(z: torch.Tensor, psi: float | None, seed: int | None = 0) -> torch.Tensor:
    """``z`` with every component beyond ``|psi|`` redrawn from N(0, 1) restricted to [-psi, psi].

    The redraws come from a CPU generator seeded by ``seed`` (``None``: fresh), so the same latents,
    psi and seed give the same result on every device. ``psi`` None or inf returns ``z`` unchanged.
    """
    psi = check_psi(psi)
    if psi is None:
        return z
    gen = torch.Generator(device="cpu")
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed((int(seed) * 1_000_003 + _REDRAW_STREAM) % (1 << 63))
    u = torch.rand(z.shape, generator=gen, dtype=torch.float64)
    lo = torch.special.ndtr(torch.tensor(-psi, dtype=torch.float64))     # Phi(-psi)
    inside = torch.special.ndtri(lo + u * (1 - 2 * lo))                 # Phi^-1(U(Phi(-psi), Phi(psi)))
    inside = inside.clamp_(-psi, psi).to(z.dtype).to(z.device)          # guard the last ulp of ndtri
    return torch.where(z.abs() > psi, inside, z)


def latents(n: int, z_dim: int, seed: int | None = 0, truncation: float | None = None) -> torch.Tensor:
    """[n, z_dim] standard-normal latents from a CPU generator seeded with ``seed``.

    Drawn on the CPU so a seed gives the same latents on every device; ``seed=None`` draws fresh ones.
    ``truncation`` (psi in (0, inf], default off) applies the truncation trick (``truncate_latents``).
    """
    gen = torch.Generator(device="cpu")
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return truncate_latents(torch.randn(n, z_dim, generator=gen), truncation, seed)


def seed_latents(seeds: list[int], z_dim: int, truncation: float | None = None) -> torch.Tensor:
    """One latent per seed (row i is ``latents(1, z_dim, seeds[i], truncation)``): fixed key frames for walks."""
    return torch.cat([latents(1, z_dim, s, truncation) for s in seeds], 0)
