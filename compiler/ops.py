"""The registry of layer ops a spec row may name.

Each op knows which network it belongs to, how it changes the shape and how many parameters
it has, so the graph can be annotated without building modules; ``make`` builds the module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from progan_zoo.nn import Downsample2x, EqualizedConv2d, EqualizedLinear, MinibatchStddev, Upsample2x


@dataclass(frozen=True)
class LayerCtx:
    """What an op needs to size itself: channels in and out, resolution and network options."""

    network: str                 # "G" or "D".
    resolution: int              # Resolution of the block the layer sits in.
    in_channels: int
    out_channels: int
    equalized: bool = True
    lrelu_slope: float = 0.2
    pixel_norm_eps: float | None = None  # G: pixel norm after every conv, None in D.
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1


@dataclass(frozen=True)
class Op:
    name: str
    networks: tuple[str, ...]                       # Which networks may use it.
    description: str
    params: Callable[[LayerCtx], int]               # Trainable parameters.
    out_channels: Callable[[LayerCtx], int]         # Channels after the op.
    out_size: Callable[[int], int]                  # Spatial size after the op, from size before.
    make: Callable[[LayerCtx], nn.Module]
    activation: Callable[[LayerCtx], str] = field(default=lambda c: "-")
    takes_channels: bool = True                     # Whether the row's channels apply to it.


class Registry:
    """A named table of ops; an unknown name is an error that lists the known ones."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: dict[str, Op] = {}

    def register(self, op: Op) -> Op:
        self._items[op.name] = op
        return op

    def get(self, name: str) -> Op:
        if name not in self._items:
            raise KeyError(f"unknown {self.name} '{name}'; known: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self, network: str | None = None) -> list[str]:
        return sorted(n for n, op in self._items.items() if network is None or network in op.networks)

    def __contains__(self, name: str) -> bool:
        return name in self._items


OPS = Registry("layer op")


def _lrelu(c: LayerCtx) -> str:
    return f"lrelu {c.lrelu_slope:g}" + (" + pixnorm" if c.pixel_norm_eps is not None else "")


OPS.register(Op(
    name="dense4x4",
    networks=("G", "D"),
    description="G: dense layer from the latent to a 4x4 map (the paper's 'conv 4x4'); "
                "D: dense layer from the flattened 4x4 map to a vector (the paper's 'conv 4x4').",
    params=lambda c: (c.in_channels * 16 * c.out_channels + c.out_channels) if c.network == "G"
    else (c.in_channels * 16 * c.out_channels + c.out_channels),
    out_channels=lambda c: c.out_channels,
    out_size=lambda s: 4 if s == 1 else 1,
    make=lambda c: EqualizedLinear(
        c.in_channels, c.out_channels * 16, gain=math.sqrt(2) / 4, equalized=c.equalized,
        lrelu_slope=c.lrelu_slope, pixel_norm_eps=c.pixel_norm_eps, reshape_to=(c.out_channels, 4, 4),
    ) if c.network == "G" else EqualizedLinear(
        c.in_channels * 16, c.out_channels, equalized=c.equalized, lrelu_slope=c.lrelu_slope,
        flatten_input=True,
    ),
    activation=_lrelu,
))

for _k in (1, 3):
    OPS.register(Op(
        name=f"conv{_k}x{_k}",
        networks=("G", "D"),
        description=f"{_k}x{_k} convolution, 'same' padding, equalized LR, leaky ReLU "
                    "(and pixel norm in G).",
        params=lambda c, k=_k: c.in_channels * c.out_channels * k * k + c.out_channels,
        out_channels=lambda c: c.out_channels,
        out_size=lambda s: s,
        make=lambda c, k=_k: EqualizedConv2d(
            c.in_channels, c.out_channels, k, equalized=c.equalized, lrelu_slope=c.lrelu_slope,
            pixel_norm_eps=c.pixel_norm_eps,
        ),
        activation=_lrelu,
    ))

OPS.register(Op(
    name="upsample",
    networks=("G",),
    description="Nearest-neighbour 2x upsampling.",
    params=lambda c: 0,
    out_channels=lambda c: c.in_channels,
    out_size=lambda s: s * 2,
    make=lambda c: Upsample2x(),
    takes_channels=False,
))

OPS.register(Op(
    name="downsample",
    networks=("D",),
    description="2x2 average pooling.",
    params=lambda c: 0,
    out_channels=lambda c: c.in_channels,
    out_size=lambda s: s // 2,
    make=lambda c: Downsample2x(),
    takes_channels=False,
))

OPS.register(Op(
    name="mbstd",
    networks=("D",),
    description="Minibatch standard deviation: appends the mean std over a group of samples "
                "as extra feature map(s) (paper section 3).",
    params=lambda c: 0,
    out_channels=lambda c: c.in_channels + c.mbstd_num_features,
    out_size=lambda s: s,
    make=lambda c: MinibatchStddev(c.mbstd_group_size, c.mbstd_num_features),
    takes_channels=False,
))


def to_rgb_params(in_channels: int, image_channels: int) -> int:
    """toRGB / fromRGB are 1x1 convs."""
    return in_channels * image_channels + image_channels
