"""The registry of layer ops a spec row may name.

Each op knows which networks may use it, how it changes the shape and how many parameters it
has, so the graph can be annotated (and the schema's list of op names generated) without
building modules; ``make`` builds the module. torch is imported only by ``make``, so the CLI's
``--help``, the schema tools and validation stay fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from progan_zoo.registry import Registry

if TYPE_CHECKING:
    from torch import nn


def _nn():
    import progan_zoo.nn as nn_layers
    return nn_layers


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


# --------------------------------------------------------------------------- cost facts (compiler/cost.py)

@dataclass(frozen=True)
class OpCost:
    """How one op costs (compiler/cost.py's conventions): what a new entry of ``OPS`` provides.

    ``macs`` gives the forward multiply-accumulates per image and ``saved`` the fp32 elements
    autograd keeps for the backward pass per image, both from the graph node's attributes
    (``out_shape``, ``in_channels``, ``out_channels``, ``params``, ``activation``, ``kind``,
    ``network``). Ops without weights have ``macs`` 0.
    """

    macs: Callable[[dict[str, Any]], int]
    saved: Callable[[dict[str, Any]], float]


def elems(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _area(a: dict[str, Any]) -> int:
    shape = a["out_shape"]
    return shape[1] * shape[2] if len(shape) == 3 else 1


def _weights(a: dict[str, Any]) -> int:
    # Parameters less one bias per output channel (map): the multiplied weights.
    return a["params"] - a["out_channels"]


def conv_macs(a: dict[str, Any]) -> int:
    """A 'same' convolution: every weight is used once per output pixel."""
    return _weights(a) * _area(a)


def dense_macs(a: dict[str, Any]) -> int:
    """A dense layer: every weight is used once per image, whatever shape the output is given."""
    return _weights(a)


def layer_saved(a: dict[str, Any]) -> float:
    """A weighted layer's output, kept by its consumer; its pre-activation, kept by the leaky ReLU;
    with pixel norm, its pre-norm value and 1/norm (one value per pixel)."""
    out = elems(a["out_shape"])
    act = a["activation"]
    if a["kind"] in ("torgb", "output"):
        return 0.0  # G's image is counted as D's input; D's score is kept by nothing.
    n = out * (1 + act.startswith("lrelu"))
    if "pixnorm" in act:
        n += out + out / a["out_channels"]
    return float(n)


def _resample_saved(a: dict[str, Any]) -> float:
    # Pooling/upsampling keep no tensor themselves; their output is kept by the next conv, except
    # G's fade_up, whose output only enters the blend.
    return 0.0 if (a["kind"] == "fade" and a["network"] == "G") else float(elems(a["out_shape"]))


def _mbstd_saved(a: dict[str, Any]) -> float:
    # The centred input (kept by the square), the output (kept by the next conv); the per-group
    # std is a group's share of one input.
    out = elems(a["out_shape"])
    return 2.0 * out


_CONV_COST = OpCost(conv_macs, layer_saved)
_DENSE_COST = OpCost(dense_macs, layer_saved)
_RESAMPLE_COST = OpCost(lambda a: 0, _resample_saved)
_MBSTD_COST = OpCost(lambda a: 0, _mbstd_saved)


@dataclass(frozen=True)
class Op:
    """One layer op: its name in specs, its Table 2 label, and how it sizes and builds itself."""

    name: str                                       # As written in a spec's `layers:` list.
    label: str                                      # As Table 2 names it (summary tables).
    networks: tuple[str, ...]                       # Which networks may use it.
    description: str                                # One line for docs/spec.md.
    params: Callable[[LayerCtx], int]               # Trainable parameters.
    out_channels: Callable[[LayerCtx], int]         # Channels after the op.
    out_size: Callable[[int], int]                  # Spatial size after the op, from size before.
    make: Callable[[LayerCtx], "nn.Module"]
    activation: Callable[[LayerCtx], str] = field(default=lambda c: "-")
    takes_channels: bool = True                     # Whether the row's channels apply to it.
    cost: OpCost | None = None                      # FLOPs and saved activations (compiler/cost.py).


class OpRegistry(Registry[Op]):
    """The layer ops: each registers itself as a whole ``Op`` record; names can be filtered by network."""

    def register(self, op: Op) -> Op:  # type: ignore[override]  # an Op carries its own name
        return self.add(op.name, op, op.description)

    def names(self, network: str | None = None) -> list[str]:
        """Sorted op names, optionally only those ``network`` ("G" or "D") may use."""
        return [n for n in super().names() if network is None or network in self.get(n).networks]


OPS = OpRegistry("layer op")


def _lrelu(c: LayerCtx) -> str:
    return f"lrelu {c.lrelu_slope:g}" + (" + pixnorm" if c.pixel_norm_eps is not None else "")


def _make_dense4x4(c: LayerCtx) -> "nn.Module":
    nn_layers = _nn()
    if c.network == "G":
        # Official G_paper: dense from the latent to nf*16 values, reshaped to [nf, 4, 4], one bias
        # per map; gain sqrt(2)/4 because the Theano original was a 4x4 'full' conv of fan-in latent*16.
        return nn_layers.EqualizedLinear(
            c.in_channels, c.out_channels * 16, gain=math.sqrt(2) / 4, equalized=c.equalized,
            lrelu_slope=c.lrelu_slope, pixel_norm_eps=c.pixel_norm_eps, reshape_to=(c.out_channels, 4, 4),
        )
    return nn_layers.EqualizedLinear(
        c.in_channels * 16, c.out_channels, equalized=c.equalized, lrelu_slope=c.lrelu_slope, flatten_input=True,
    )


OPS.register(Op(
    name="dense4x4",
    label="Conv 4x4",
    networks=("G", "D"),
    description="G: dense layer from the latent to a 4x4 map; D: dense layer from the flattened 4x4 map "
                "to a vector (both are the paper's 'conv 4x4'). Leaky ReLU; pixel norm in G.",
    # Same count either way: in * 16 * out weights plus one bias per output feature (map).
    params=lambda c: c.in_channels * 16 * c.out_channels + c.out_channels,
    out_channels=lambda c: c.out_channels,
    out_size=lambda s: 4 if s == 1 else 1,
    make=_make_dense4x4,
    activation=_lrelu,
    cost=_DENSE_COST,
))

def _conv_op(name: str, label: str, networks: tuple[str, ...], description: str, layer: str, kernel: int,
             out_size: Callable[[int], int], pixel_norm: bool = True, cost: OpCost = _CONV_COST) -> Op:
    """A k x k convolution op of any kind (plain, fused up, fused down): k*k*in*out weights plus one bias
    per output map, leaky ReLU, and pixel norm where the network has it (G) and ``pixel_norm`` allows.
    ``layer`` names the progan_zoo.nn class that ``make`` builds."""
    def make(c: LayerCtx) -> "nn.Module":
        norm = {"pixel_norm_eps": c.pixel_norm_eps} if pixel_norm else {}
        return getattr(_nn(), layer)(c.in_channels, c.out_channels, kernel, equalized=c.equalized,
                                     lrelu_slope=c.lrelu_slope, **norm)

    return Op(
        name=name, label=label, networks=networks, description=description,
        params=lambda c: c.in_channels * c.out_channels * kernel * kernel + c.out_channels,
        out_channels=lambda c: c.out_channels,
        out_size=out_size,
        make=make,
        activation=_lrelu,
        cost=cost,
    )


def _parameterless_op(name: str, label: str, networks: tuple[str, ...], description: str,
                      out_size: Callable[[int], int], make: Callable[[LayerCtx], "nn.Module"], cost: OpCost,
                      added_channels: Callable[[LayerCtx], int] = lambda c: 0) -> Op:
    """An op without weights that keeps its input's channels (plus ``added_channels``); a spec row's
    channel count does not apply to it."""
    return Op(
        name=name, label=label, networks=networks, description=description,
        params=lambda c: 0,
        out_channels=lambda c: c.in_channels + added_channels(c),
        out_size=out_size,
        make=make,
        takes_channels=False,
        cost=cost,
    )


for _k in (1, 3):
    OPS.register(_conv_op(
        f"conv{_k}x{_k}", f"Conv {_k}x{_k}", ("G", "D"),
        f"{_k}x{_k} convolution, 'same' padding, leaky ReLU (and pixel norm in G).",
        "EqualizedConv2d", _k, out_size=lambda s: s,
    ))

# The official TF code's default, fused_scale=True (networks.py G_paper / D_paper): G's up-convolution
# and D's down-convolution are single strided convolutions. Same parameters as the separate rows.
OPS.register(_conv_op(
    "upconv3x3", "Upconv 3x3", ("G",),
    "Fused 2x upsample + 3x3 conv (official upscale2d_conv2d, fused_scale=True): a stride-2 "
    "transposed 4x4 conv built from the 3x3 kernel; then leaky ReLU and pixel norm. Replaces "
    "upsample, conv3x3.",
    "EqualizedUpConv2d", 3, out_size=lambda s: s * 2,
    # The official fused ops run a 4x4 kernel (the 3x3 one padded and summed): G's as a stride-2
    # transposed conv over the input pixels (a quarter of the output's), so each counts 16 of every
    # 9 stored weights per input pixel.
    cost=OpCost(lambda a: _weights(a) * 16 // 9 * _area(a) // 4, layer_saved),
))

OPS.register(_conv_op(
    "conv3x3_down", "Conv 3x3 + Downsample", ("D",),
    "3x3 conv, 2x2 average pool, then bias and leaky ReLU (official conv2d_downscale2d, "
    "fused_scale=True: the activation comes after the pool). Replaces conv3x3, downsample, "
    "which activates before the pool.",
    "EqualizedConvDown2d", 3, out_size=lambda s: s // 2, pixel_norm=False,  # a D-only op: no pixel norm
    # D's fused op: a stride-2 4x4 conv over the output pixels (see upconv3x3).
    cost=OpCost(lambda a: _weights(a) * 16 // 9 * _area(a), layer_saved),
))

# pytorch_GAN_zoo's PGAN (imported checkpoints): G's first layer has one bias per output value.
OPS.register(Op(
    name="dense4x4_fullbias",
    label="Conv 4x4",
    networks=("G",),
    description="As G's dense4x4 but with one bias per output value (16 per map), as pytorch_GAN_zoo's "
                "PGAN formatLayer; leaky ReLU and pixel norm.",
    params=lambda c: c.in_channels * 16 * c.out_channels + 16 * c.out_channels,
    out_channels=lambda c: c.out_channels,
    out_size=lambda s: 4 if s == 1 else 1,
    make=lambda c: _nn().EqualizedLinear(
        c.in_channels, c.out_channels * 16, gain=math.sqrt(2) / 4, equalized=c.equalized,
        lrelu_slope=c.lrelu_slope, pixel_norm_eps=c.pixel_norm_eps, reshape_to=(c.out_channels, 4, 4),
        bias_per_map=False,
    ),
    activation=_lrelu,
    cost=OpCost(lambda a: a["params"] - 16 * a["out_channels"], layer_saved),  # one bias per value, not per map
))

OPS.register(_parameterless_op(
    "upsample", "Upsample", ("G",), "Nearest-neighbour 2x upsampling.",
    out_size=lambda s: s * 2, make=lambda c: _nn().Upsample2x(), cost=_RESAMPLE_COST,
))

OPS.register(_parameterless_op(
    "downsample", "Downsample", ("D",), "2x2 average pooling.",
    out_size=lambda s: s // 2, make=lambda c: _nn().Downsample2x(), cost=_RESAMPLE_COST,
))

OPS.register(_parameterless_op(
    "mbstd", "Minibatch stddev", ("D",),
    "Minibatch standard deviation (paper section 3): appends the mean std over a group "
    "of samples as mbstd_num_features extra feature map(s).",
    out_size=lambda s: s, make=lambda c: _nn().MinibatchStddev(c.mbstd_group_size, c.mbstd_num_features),
    cost=_MBSTD_COST, added_channels=lambda c: c.mbstd_num_features,
))

OPS.register(_parameterless_op(
    "mbstd_gan_zoo", "Minibatch stddev", ("D",),
    "Minibatch stddev as pytorch_GAN_zoo's PGAN computes it (imported checkpoints): groups of "
    "mbstd_group_size consecutive samples, unbiased variance, one extra feature map.",
    out_size=lambda s: s, make=lambda c: _nn().MinibatchStddevGanZoo(c.mbstd_group_size),
    cost=_MBSTD_COST, added_channels=lambda c: 1,
))


def to_rgb_params(in_channels: int, image_channels: int) -> int:
    """toRGB / fromRGB are 1x1 convs."""
    return in_channels * image_channels + image_channels
