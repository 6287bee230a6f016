"""Growable generator and discriminator (paper section 2, Figure 2; official ``G_paper``/``D_paper``).

Both networks hold every resolution's block at all times, keyed by resolution (``b4``, ``b8``,
...), so the state_dict is the same whichever stage is active and growing keeps every weight.
``stage`` is the index of the highest active resolution (0 is 4x4) and ``alpha`` the weight of
the newest block during its fade-in (1 - frac(lod) in the official code).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from .layers import downsample2x, lerp, pixel_norm, upsample2x


class Block(nn.Sequential):
    """One resolution's layers, in order, with names such as ``conv0`` or ``dense0``."""

    def __init__(self, resolution: int, layers: "OrderedDict[str, nn.Module]") -> None:
        super().__init__(layers)
        self.resolution = resolution


def _check_stage(stage: int | None, num_stages: int) -> int:
    if stage is None:
        return num_stages - 1
    if not 0 <= int(stage) < num_stages:
        raise ValueError(f"stage {stage} is out of range: this network has stages 0..{num_stages - 1}")
    return int(stage)


def _is_one(alpha: float | torch.Tensor) -> bool:
    return not torch.is_tensor(alpha) and float(alpha) >= 1.0


class _Growable(nn.Module):
    """What G and D share: one child ``b<res>`` per resolution, listed in ``self.resolutions``."""

    resolutions: list[int]

    @property
    def num_stages(self) -> int:
        return len(self.resolutions)

    @property
    def resolution(self) -> int:
        return self.resolutions[-1]

    def stage_of(self, resolution: int) -> int:
        """Stage index of a resolution."""
        if resolution not in self.resolutions:
            raise ValueError(f"resolution {resolution} is not one of {self.resolutions}")
        return self.resolutions.index(resolution)

    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"b{r}") for r in self.resolutions]


class Generator(_Growable):
    """G(z, stage, alpha) -> images in [-1, 1] (not clamped) of shape [N, C, 4*2^stage, 4*2^stage]."""

    def __init__(
        self,
        blocks: Sequence[Block],            # From 4x4 up; blocks[0] maps the latent to 4x4.
        to_rgb: Sequence[nn.Module],        # One toRGB per block, same order.
        z_dim: int,                         # Latent size.
        image_channels: int,                # Output channels.
        normalize_latent: bool = True,      # Pixel norm on z before the first layer.
        pixel_norm_eps: float = 1e-8,
        label_size: int = 0,                # Classes; > 0: one-hot labels are concatenated to z.
        tanh_output: bool = False,          # tanh on the (blended) image: the Theano tanh_at_end=1.0.
    ) -> None:
        super().__init__()
        if len(blocks) != len(to_rgb):
            raise ValueError("Generator needs one toRGB per block")
        self.resolutions = [b.resolution for b in blocks]
        for block, rgb in zip(blocks, to_rgb):
            self.add_module(f"b{block.resolution}", _GStage(block, rgb))
        self.z_dim, self.image_channels = z_dim, image_channels
        self.normalize_latent, self.pixel_norm_eps = normalize_latent, pixel_norm_eps
        self.label_size = label_size
        self.tanh_output = tanh_output

    def at_stage(self, stage: int) -> "Generator":
        """The generator of stages 0..stage (e.g. the 256x256 network inside a 1024x1024 one), sharing
        this one's weights; ``self`` at the last stage."""
        if not 0 <= stage < self.num_stages:
            raise ValueError(f"stage {stage} is out of range: this network has stages 0..{self.num_stages - 1}")
        if stage == self.num_stages - 1:
            return self
        stages = self.stages()[: stage + 1]
        return Generator([s.block for s in stages], [s.torgb for s in stages], z_dim=self.z_dim,
                         image_channels=self.image_channels, normalize_latent=self.normalize_latent,
                         pixel_norm_eps=self.pixel_norm_eps, label_size=self.label_size,
                         tanh_output=self.tanh_output)

    def forward(self, z: torch.Tensor, stage: int | None = None, alpha: float | torch.Tensor = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """``labels`` (conditional G only): class indices [N] or one-hot / soft labels [N, label_size]."""
        stage = _check_stage(stage, self.num_stages)
        if self.label_size:
            # Official G_paper: concat([latents, labels]), pixel-normalised together.
            z = torch.cat([z, one_hot(labels, self.label_size, len(z)).to(z)], dim=1)  # [N, Z+L]
        elif labels is not None:
            raise ValueError("this generator is unconditional: call it without labels")
        x = pixel_norm(z, self.pixel_norm_eps) if self.normalize_latent else z  # [NZ]
        stages = self.stages()
        prev = x
        for s in stages[: stage + 1]:
            prev, x = x, s.block(x)                                   # [NCHW]
        img = stages[stage].torgb(x)                                  # [NCHW]
        if stage > 0 and not _is_one(alpha):
            old = upsample2x(stages[stage - 1].torgb(prev))          # [NCHW]
            img = lerp(old, img, alpha)
        # Theano G_paper puts its tanh after the level-of-detail blend (Gtanh after Glod).
        return torch.tanh(img) if self.tanh_output else img


def one_hot(labels: torch.Tensor | None, label_size: int, n: int) -> torch.Tensor:
    """Labels as float [n, label_size]: class indices [n] become one-hot rows; [n, label_size] passes."""
    if labels is None:
        raise ValueError(f"this generator is conditional on {label_size} classes: pass labels= "
                         "(class indices [N] or one-hot [N, label_size])")
    if labels.dim() == 1 and not labels.is_floating_point():
        if len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} latents")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= label_size):
            raise ValueError(f"class index out of range 0..{label_size - 1}: {labels.tolist()}")
        return torch.nn.functional.one_hot(labels.long(), label_size).float()
    if labels.shape != (n, label_size):
        raise ValueError(f"labels have shape {tuple(labels.shape)}; expected [{n}] class indices or "
                         f"[{n}, {label_size}] one-hot rows")
    return labels.float()


class _GStage(nn.Module):
    def __init__(self, block: Block, torgb: nn.Module) -> None:
        super().__init__()
        self.block = block  # keys read ``b8.block.conv0.weight``, ``b8.torgb.weight``
        self.torgb = torgb
        self.resolution = block.resolution


class Discriminator(_Growable):
    """D(x, stage, alpha) -> [N, 1 + label_size]; x is [N, C, 4*2^stage, 4*2^stage].

    Column 0 is the score; a conditional D (label_size > 0) adds its label logits in the other
    columns, as the official D_paper's last dense layer does (``split_scores`` separates them)."""

    def __init__(
        self,
        blocks: Sequence[Block],            # From 4x4 up; blocks[0] ends with the output layer.
        from_rgb: Sequence[nn.Module],      # One fromRGB per block, same order.
        image_channels: int,
        label_size: int = 0,                # Classes; > 0: label logits after the score.
    ) -> None:
        super().__init__()
        if len(blocks) != len(from_rgb):
            raise ValueError("Discriminator needs one fromRGB per block")
        self.label_size = label_size
        self.resolutions = [b.resolution for b in blocks]
        for block, rgb in zip(blocks, from_rgb):
            self.add_module(f"b{block.resolution}", _DStage(block, rgb))
        self.image_channels = image_channels

    def forward(self, x: torch.Tensor, stage: int | None = None, alpha: float | torch.Tensor = 1.0) -> torch.Tensor:
        stage = _check_stage(stage, self.num_stages)
        want = self.resolutions[stage]
        if x.shape[-1] != want or x.shape[-2] != want:
            raise ValueError(f"D at stage {stage} expects {want}x{want} images, got {tuple(x.shape[-2:])}")
        stages = self.stages()
        h = stages[stage].block(stages[stage].fromrgb(x))             # [NCHW]
        if stage > 0 and not _is_one(alpha):
            old = stages[stage - 1].fromrgb(downsample2x(x))          # [NCHW]
            h = lerp(old, h, alpha)
        for s in reversed(stages[:stage]):
            h = s.block(h)
        return h                                                      # [N, 1+L]


def split_scores(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's output -> (scores [N, 1], label logits [N, L]; [N, 0] for an unconditional D)."""
    return out[:, :1], out[:, 1:]


class _DStage(nn.Module):
    def __init__(self, block: Block, fromrgb: nn.Module) -> None:
        super().__init__()
        self.fromrgb = fromrgb
        self.block = block
        self.resolution = block.resolution
