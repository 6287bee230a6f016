"""The registry of layer ops a spec row may name.

Each op knows which networks may use it, how it changes the shape and how many parameters it
has, so the graph can be annotated (and the schema's list of op names generated) without
building modules; ``make`` builds the module. torch is imported only by ``make``, so the CLI's
``--help``, the schema tools and validation stay fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
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
    norm: str | None = None              # "batch" (G's batch_norm) or "layer" (D's layer_norm), else None.
    mbdisc_kernels: int = 0              # Minibatch discrimination: kernels K and dimension B per kernel.
    mbdisc_kernel_dim: int = 5


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
    # Parameters less one bias per output channel (map), or a normalization's affine parameters
    # (batch norm: 2 per map; layer norm: a bias per map and one gain): the multiplied weights.
    act = a["activation"]
    extra = a["out_channels"] if act.startswith("batchnorm") else 1 if act.startswith("layernorm") else 0
    return a["params"] - a["out_channels"] - extra


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
    # The activation keeps its input (relu too); a normalization keeps its input and normalized output.
    n = out * (1 + ("relu" in act) + 2 * ("norm +" in act))
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
    flat: bool = False                              # Works on D's [N, C] vector: only after its dense4x4.
    normalizable: bool = False                      # options.batch_norm / layer_norm apply to it.
    plugin: str | None = None                       # The distribution that registered it (entry point).


class OpRegistry(Registry[Op]):
    """The layer ops: each registers itself as a whole ``Op`` record; names can be filtered by network."""

    def register(self, op: Op) -> Op:  # type: ignore[override]  # an Op carries its own name
        return self.add(op.name, op, op.description)

    def names(self, network: str | None = None) -> list[str]:
        """Sorted op names, optionally only those ``network`` ("G" or "D") may use."""
        return [n for n in super().names() if network is None or network in self.get(n).networks]


OPS = OpRegistry("layer op")


def _lrelu(c: LayerCtx) -> str:
    act = "relu" if c.lrelu_slope == 0 else f"lrelu {c.lrelu_slope:g}"
    norm = {"batch": "batchnorm + ", "layer": "layernorm + "}.get(c.norm or "", "")
    return norm + act + (" + pixnorm" if c.pixel_norm_eps is not None else "")


def _bias_params(c: LayerCtx) -> int:
    """Parameters besides the weights: one bias per output map, or a normalization's own: batch norm a
    scale and shift per map (it replaces the bias), layer norm one gain plus a bias per map."""
    return {"batch": 2 * c.out_channels, "layer": c.out_channels + 1}.get(c.norm or "", c.out_channels)


def _make_dense4x4(c: LayerCtx) -> "nn.Module":
    nn_layers = _nn()
    if c.network == "G":
        # Official G_paper: dense from the latent to nf*16 values, reshaped to [nf, 4, 4], one bias
        # per map; gain sqrt(2)/4 because the Theano original was a 4x4 'full' conv of fan-in latent*16.
        return nn_layers.EqualizedLinear(
            c.in_channels, c.out_channels * 16, gain=math.sqrt(2) / 4, equalized=c.equalized,
            lrelu_slope=c.lrelu_slope, pixel_norm_eps=c.pixel_norm_eps, reshape_to=(c.out_channels, 4, 4),
            norm=c.norm,
        )
    return nn_layers.EqualizedLinear(
        c.in_channels * 16, c.out_channels, equalized=c.equalized, lrelu_slope=c.lrelu_slope, flatten_input=True,
        norm=c.norm,
    )


OPS.register(Op(
    name="dense4x4",
    label="Conv 4x4",
    networks=("G", "D"),
    description="G: dense layer from the latent to a 4x4 map; D: dense layer from the flattened 4x4 map "
                "to a vector (both are the paper's 'conv 4x4'). Leaky ReLU; pixel norm in G.",
    # Same count either way: in * 16 * out weights plus one bias per output feature (map).
    params=lambda c: c.in_channels * 16 * c.out_channels + _bias_params(c),
    out_channels=lambda c: c.out_channels,
    out_size=lambda s: 4 if s == 1 else 1,
    make=_make_dense4x4,
    activation=_lrelu,
    normalizable=True,
    cost=_DENSE_COST,
))

def _conv_op(name: str, label: str, networks: tuple[str, ...], description: str, layer: str, kernel: int,
             out_size: Callable[[int], int], pixel_norm: bool = True, cost: OpCost = _CONV_COST) -> Op:
    """A k x k convolution op of any kind (plain, fused up, fused down): k*k*in*out weights plus one bias
    per output map, leaky ReLU, and pixel norm where the network has it (G) and ``pixel_norm`` allows.
    ``layer`` names the progan_zoo.nn class that ``make`` builds."""
    def make(c: LayerCtx) -> "nn.Module":
        pn = {"pixel_norm_eps": c.pixel_norm_eps} if pixel_norm else {}
        return getattr(_nn(), layer)(c.in_channels, c.out_channels, kernel, equalized=c.equalized,
                                     lrelu_slope=c.lrelu_slope, norm=c.norm, **pn)

    return Op(
        name=name, label=label, networks=networks, description=description,
        params=lambda c: c.in_channels * c.out_channels * kernel * kernel + _bias_params(c),
        out_channels=lambda c: c.out_channels,
        out_size=out_size,
        make=make,
        activation=_lrelu,
        normalizable=True,
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


OPS.register(Op(
    name="mbdisc",
    label="Minibatch discrimination",
    networks=("D",),
    description="Minibatch discrimination (Salimans et al. 2016; Table 1 row e*): after D's dense4x4, "
                "appends for each of mbdisc_kernels kernels the sum over the other samples of "
                "exp(-L1 distance) between their mbdisc_kernel_dim-d projections.",
    # theta [in, K, B], log_weight_scale [K, B], bias [K].
    params=lambda c: (c.in_channels + 1) * c.mbdisc_kernels * c.mbdisc_kernel_dim + c.mbdisc_kernels,
    out_channels=lambda c: c.in_channels + c.mbdisc_kernels,
    out_size=lambda s: s,
    make=lambda c: _nn().MinibatchDiscrimination(c.in_channels, c.mbdisc_kernels, c.mbdisc_kernel_dim),
    activation=lambda c: f"{c.mbdisc_kernels} kernels x {c.mbdisc_kernel_dim}",
    takes_channels=False,
    flat=True,
    # The projection is a dense layer (in * K * B multiply-adds per image); the pairwise L1 distances add
    # N * K * B per image, left out as the per-image model has no minibatch. It keeps its projection
    # [K, B] and its output.
    cost=OpCost(lambda a: a["in_channels"] * (a["out_channels"] - a["in_channels"]) * a["ctx"].mbdisc_kernel_dim,
                lambda a: float(elems(a["out_shape"]) + (a["out_channels"] - a["in_channels"]) * a["ctx"].mbdisc_kernel_dim)),
))


# --------------------------------------------------------------------------- plug-in ops

ENTRY_POINT_GROUP = "progan_zoo.ops"
# Entry points whose op could not be registered: entry-point (= op) name -> (distribution, reason).
PLUGIN_FAILURES: dict[str, tuple[str, str]] = {}


def load_plugin_ops() -> None:
    """Register the ops of installed packages: each entry point of the ``progan_zoo.ops`` group names an
    ``Op`` (or a list of them) and is called by the op's name. Run once when this module is imported,
    before schema.py reads the op names, so plug-in ops are in the schema like built-in ones. A plug-in
    that fails to load is not fatal: a spec that names its op is refused with the reason."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        try:
            loaded = ep.load()
            ops = list(loaded) if isinstance(loaded, (list, tuple)) else [loaded]
            if not all(isinstance(op, Op) for op in ops):
                raise TypeError(f"{ep.value} is not a progan_zoo.compiler.ops.Op (or a list of them)")
            if ep.name not in [op.name for op in ops]:
                raise ValueError(f"the entry point is called '{ep.name}' but registers {[op.name for op in ops]}: "
                                 "name it after its op")
            for op in ops:
                if op.name in OPS:
                    raise ValueError(f"op '{op.name}' is already registered"
                                     + (f" by {OPS.get(op.name).plugin}" if OPS.get(op.name).plugin else " (built in)"))
                OPS.register(replace(op, plugin=dist))
        except Exception as exc:  # a broken plug-in must not stop the compiler; its op's users hear why
            PLUGIN_FAILURES[ep.name] = (dist, f"{exc.__class__.__name__}: {exc}")


def plugin_hint(name: str) -> str:
    """What to do about a layer op name nobody registered: the failed plug-in's reason, or where plug-in ops come from."""
    if name in PLUGIN_FAILURES:
        dist, reason = PLUGIN_FAILURES[name]
        return f"'{name}' comes from the package {dist} ({ENTRY_POINT_GROUP} entry point), which failed to load: {reason}"
    return (f"if '{name}' comes from a plug-in package, install it: plug-in ops register through the "
            f"'{ENTRY_POINT_GROUP}' entry-point group (docs/spec.md, 'Writing your own op')")


def to_rgb_params(in_channels: int, image_channels: int) -> int:
    """toRGB / fromRGB are 1x1 convs."""
    return in_channels * image_channels + image_channels


load_plugin_ops()
