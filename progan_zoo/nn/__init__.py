"""Network building blocks: equalized layers, pixel norm, minibatch stddev, growable G and D."""

from .layers import (
    Downsample2x,
    EqualizedConv2d,
    EqualizedConvDown2d,
    EqualizedLinear,
    EqualizedUpConv2d,
    MinibatchStddev,
    MinibatchStddevGanZoo,
    PixelNorm,
    Upsample2x,
    downsample2x,
    lerp,
    pixel_norm,
    upsample2x,
)
from .networks import Block, Discriminator, Generator, one_hot, split_scores

__all__ = [
    "Block", "Discriminator", "Downsample2x", "EqualizedConv2d", "EqualizedConvDown2d", "EqualizedLinear",
    "EqualizedUpConv2d", "Generator", "MinibatchStddev", "MinibatchStddevGanZoo", "PixelNorm", "Upsample2x",
    "downsample2x", "lerp", "one_hot", "pixel_norm", "split_scores", "upsample2x",
]
