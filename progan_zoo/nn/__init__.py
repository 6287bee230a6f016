"""Network building blocks: equalized layers, pixel norm, minibatch stddev, growable G and D."""

from .layers import (
    BatchNorm,
    Downsample2x,
    EqualizedConv2d,
    EqualizedConvDown2d,
    EqualizedLinear,
    EqualizedUpConv2d,
    LayerNorm,
    MinibatchDiscrimination,
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
    "BatchNorm", "Block", "Discriminator", "Downsample2x", "EqualizedConv2d", "EqualizedConvDown2d", "EqualizedLinear",
    "EqualizedUpConv2d", "Generator", "LayerNorm", "MinibatchDiscrimination", "MinibatchStddev", "MinibatchStddevGanZoo", "PixelNorm", "Upsample2x",
    "downsample2x", "lerp", "one_hot", "pixel_norm", "split_scores", "upsample2x",
]
