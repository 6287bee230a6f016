"""Size limits: every size in a spec against a bound no single machine exceeds (docs/spec.md, "Size limits").

An absurd value (a latent of 10^9, a 10^6-pixel side, a layer of 2^40 weights) is refused here with
its position and what it would cost, instead of reaching the allocator. ``check_size_fields`` bounds
each field on its own (before the cross-field rules); ``check_size_totals`` walks the rows as the
graph stage does and bounds each layer's parameters and activations and the total (after them).
"""

from __future__ import annotations

from .defaults import d_layers, g_layers
from .load import RawSpec, error_at
from .ops import OPS, LayerCtx
from .schema import Spec

# Bounds on every size in a spec, so an absurd value is refused here, with its position, instead of
# reaching the allocator. They sit far above anything the paper or the shipped specs use (Table 2:
# latent 512, 16-512 maps, 1024x1024, minibatch 4-512, 12000 kimg) and are stated in docs/spec.md
# ("Size limits"). Per layer and in total they are parameter and activation counts that no single
# machine holds in fp32 while training (weights, gradients and Adam need about 9 bytes x 4 per weight).

MAX_WIDTH = 2 ** 16              # latent_size and every channel count.
MAX_IMAGE_CHANNELS = 2 ** 10
MAX_RESOLUTION = 2 ** 14         # 16384x16384.
MAX_MINIBATCH = 2 ** 16
MAX_KIMG = 10 ** 6               # A billion images (the paper: 12000 kimg).
MAX_NUM_IMAGES = 10 ** 7         # Generated images per metric (the paper: 50000 for FID).
MAX_D_REPEATS = 1000            # d_repeats and minibatch_repeats.
MAX_LAYER_PARAMS = 2 ** 31       # 8.6 GB of fp32 weights in one layer.
MAX_TOTAL_PARAMS = 2 ** 34       # G and D together: 69 GB of fp32 weights, ~600 GB to train.
MAX_LAYER_ACTIVATIONS = 2 ** 31  # Elements of one layer's output for one image (8.6 GB fp32).


def _bytes_text(n: float) -> str:
    """Decimal bytes as an author reads a machine's size: 200 TB, 8.6 GB."""
    for factor, unit in ((1e18, "EB"), (1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n:.0f} B"


def _count_text(n: float) -> str:
    return f"{n:,.0f}" if n < 1e6 else f"{n:.2g}"


def _over(value: float, limit: float) -> bool:
    return not value <= limit  # also true for NaN


def check_size_fields(spec: Spec, raw: RawSpec | None = None) -> None:
    """Every size field against its bound; the message says what the value would cost."""
    arch, tr = spec.architecture, spec.training
    G, D = ["architecture", "generator"], ["architecture", "discriminator"]
    first_g = arch.generator[0].channels
    if _over(arch.latent_size, MAX_WIDTH):
        n = arch.latent_size * 16 * first_g + first_g
        raise error_at(raw, ["architecture", "latent_size"],
                       f"latent_size {arch.latent_size} is beyond any machine: the 4x4 dense layer would hold "
                       f"{_count_text(n)} parameters, {_bytes_text(4 * n)} in fp32; the limit is {MAX_WIDTH}",
                       "the paper uses 512")
    for path, value in ((["architecture", "image_channels"], arch.image_channels), (["data", "channels"], spec.data.channels)):
        if _over(value, MAX_IMAGE_CHANNELS):
            raise error_at(raw, path, f"{value} image channels exceed the limit {MAX_IMAGE_CHANNELS}",
                           "3 for RGB, 1 for greyscale")
    widths = [(G + [i, "channels"], row.channels, row.resolution) for i, row in enumerate(arch.generator)]
    widths += [(D + [i, "channels", j], c, row.resolution) for i, row in enumerate(arch.discriminator)
               for j, c in enumerate(row.channels)]
    for path, c, res in widths:
        if _over(c, MAX_WIDTH):
            n = 9 * c * c + c
            raise error_at(raw, path, f"{c} channels are beyond any machine: one {res}x{res} conv3x3 would hold "
                           f"{_count_text(n)} parameters, {_bytes_text(4 * n)} in fp32; the limit is {MAX_WIDTH}",
                           "Table 2 uses 16 to 512 feature maps")
    resolutions = [(["architecture", "resolution"], arch.resolution), (["data", "resolution"], spec.data.resolution)]
    resolutions += [(G + [i, "resolution"], r.resolution) for i, r in enumerate(arch.generator)]
    resolutions += [(D + [i, "resolution"], r.resolution) for i, r in enumerate(arch.discriminator)]
    resolutions += [(["training", "schedule", i, "resolution"], r.resolution) for i, r in enumerate(tr.schedule)]
    for path, r in resolutions:
        if _over(r, MAX_RESOLUTION):
            raise error_at(raw, path, f"resolution {r} exceeds the limit {MAX_RESOLUTION}: one {arch.image_channels}-channel "
                           f"fp32 image alone would be {_bytes_text(4.0 * r * r * arch.image_channels)}",
                           "the paper's largest is 1024")
    batches = [(["training", "defaults", "minibatch"], tr.defaults.minibatch)]
    batches += [(["training", "schedule", i, "minibatch"], r.minibatch) for i, r in enumerate(tr.schedule)
                if r.minibatch is not None]
    for path, mb in batches:
        if _over(mb, MAX_MINIBATCH):
            raise error_at(raw, path, f"minibatch {mb} exceeds the limit {MAX_MINIBATCH}", "the paper uses 4 to 512")
    opts = arch.options
    for key in ("mbdisc_kernels", "mbdisc_kernel_dim"):
        if _over(getattr(opts, key), MAX_WIDTH):
            raise error_at(raw, ["architecture", "options", key], f"{key} {getattr(opts, key)} exceeds the limit {MAX_WIDTH}",
                           "the paper's row e* uses 100 kernels of 5 dimensions")
    for key in ("mbstd_group_size", "mbstd_num_features"):
        if _over(getattr(opts, key), MAX_WIDTH):
            raise error_at(raw, ["architecture", "options", key], f"{key} {getattr(opts, key)} exceeds the limit {MAX_WIDTH}",
                           "the official code uses a group of 4 and 1 feature")
    kimgs = [(["training", "total_kimg"], tr.total_kimg)]
    rampup = getattr(tr, "lr_rampup", None)
    if rampup is not None:
        kimgs.append((["training", "lr_rampup", "kimg"], rampup.kimg))
    kimgs += [(["training", "defaults", k], getattr(tr.defaults, k)) for k in ("stabilize_kimg", "fade_kimg")]
    kimgs += [(["training", "schedule", i, k], getattr(r, k)) for i, r in enumerate(tr.schedule)
              for k in ("stabilize_kimg", "fade_kimg") if getattr(r, k) is not None]
    for path, kimg in kimgs:
        if _over(kimg, MAX_KIMG):
            raise error_at(raw, path, f"{path[-1]} {kimg:g} exceeds the limit {MAX_KIMG:g} (a billion images)",
                           "the paper trains for 12000 kimg in all")
    for key, usual in (("d_repeats", 1), ("minibatch_repeats", 4)):
        value = getattr(tr, key, None)
        if value is not None and _over(value, MAX_D_REPEATS):
            raise error_at(raw, ["training", key], f"{key} {value} exceeds the limit {MAX_D_REPEATS}",
                           f"the official code uses {usual}")
    counts = spec.evaluation.num_images
    per_metric = [([], counts)] if isinstance(counts, int) else [([m], n) for m, n in counts.items()]
    for sub, n in per_metric:
        if _over(n, MAX_NUM_IMAGES):
            raise error_at(raw, ["evaluation", "num_images", *sub], f"num_images {n} exceeds the limit {MAX_NUM_IMAGES:,}",
                           "the paper uses 16384 for SWD and 50000 for FID")


def _layer_sizes(spec: Spec) -> list[tuple[list, str, int, int]]:
    """(key path of the row's channels, layer description, parameters, output elements per image) of
    every weighted layer, walked as the graph stage walks the rows (channels chain through the ops)."""
    arch = spec.architecture
    img_c = arch.image_channels
    out = []
    channels, size = arch.latent_size + spec.label_size(), 1
    for i, row in enumerate(arch.generator):
        path = ["architecture", "generator", i, "channels"]
        for op_name in g_layers(spec, i):
            op = OPS.get(op_name)
            ctx = LayerCtx("G", row.resolution, channels, row.channels if op.takes_channels else channels)
            size, channels = op.out_size(size), op.out_channels(ctx)
            if op.takes_channels:
                out.append((path, f"{row.resolution}x{row.resolution} generator {op_name}", op.params(ctx),
                            channels * size * size))
        out.append((path, f"{row.resolution}x{row.resolution} toRGB", channels * img_c + img_c, img_c * size * size))
    rows = arch.discriminator
    for i, row in enumerate(rows):
        path = ["architecture", "discriminator", i, "channels"]
        cin, cout = row.channels
        res = size = row.resolution
        out.append((path + [0], f"{res}x{res} fromRGB", img_c * cin + cin, cin * res * res))
        layers = d_layers(spec, i)
        weighted = [j for j, op in enumerate(layers) if OPS.get(op).takes_channels]
        channels = cin
        for j, op_name in enumerate(layers):
            op = OPS.get(op_name)
            want = cout if j == weighted[-1] else cin
            ctx = LayerCtx("D", res, channels, want if op.takes_channels else channels,
                           mbstd_num_features=arch.options.mbstd_num_features,
                           mbdisc_kernels=arch.options.mbdisc_kernels, mbdisc_kernel_dim=arch.options.mbdisc_kernel_dim)
            size, channels = op.out_size(size), op.out_channels(ctx)
            if op.takes_channels:
                out.append((path + [1 if j == weighted[-1] else 0], f"{res}x{res} discriminator {op_name}",
                            op.params(ctx), channels * size * size))
    out.append((["architecture", "discriminator", len(rows) - 1, "channels", 1], "discriminator output",
                (channels + 1) * (1 + spec.label_size()), 1 + spec.label_size()))
    return out


def check_size_totals(spec: Spec, raw: RawSpec | None = None) -> None:
    """Parameters per layer and in all, and one image's largest activation, against their bounds."""
    total = 0
    for path, what, params, elems in _layer_sizes(spec):
        if params > MAX_LAYER_PARAMS:
            raise error_at(raw, path, f"the {what} layer would hold {_count_text(params)} parameters, "
                           f"{_bytes_text(4 * params)} in fp32; the limit is 2^31 per layer", "use fewer channels")
        if elems > MAX_LAYER_ACTIVATIONS:
            raise error_at(raw, path, f"the {what} layer's output for one image would hold {_count_text(elems)} values, "
                           f"{_bytes_text(4 * elems)} in fp32; the limit is 2^31 per layer",
                           "use fewer channels at this resolution")
        total += params
    if total > MAX_TOTAL_PARAMS:
        widest = max(_layer_sizes(spec), key=lambda x: x[2])
        raise error_at(raw, widest[0], f"G and D would hold {_count_text(total)} parameters, {_bytes_text(4 * total)} in fp32 "
                       f"(the largest layer: the {widest[1]}, {_count_text(widest[2])}); the limit is 2^34 in all",
                       "use fewer channels")
