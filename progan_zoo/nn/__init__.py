"""Network building blocks: equalized layers, pixel norm, minibatch stddev, growable G and D."""

from .layers import (
    Downsample2x,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStddev,
    PixelNorm,
    Upsample2x,
    downsample2x,
    lerp,
    pixel_norm,
    upsample2x,
)
from .networks import Block, Discriminator, Generator

__all__ = [
    "Block", "Discriminator", "Downsample2x", "EqualizedConv2d", "EqualizedLinear", "Generator",
    "MinibatchStddev", "PixelNorm", "Upsample2x", "downsample2x", "lerp", "pixel_norm", "upsample2x",
]
