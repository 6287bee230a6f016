"""Stage 3: a validated spec as a networkx DiGraph, one node per layer, fade paths explicit.

Node ids read ``G/b8/conv0``; every node has ``network``, ``kind`` (input, layer, torgb,
fromrgb, output, fade), ``op``, ``resolution``, ``stage``, ``order`` (position in its block),
``in_channels``, ``out_channels``, ``out_shape`` and ``params``. Fade nodes are the paper's
Figure 2 (b): in G, ``G/b8/fade_up`` (upsample of the previous stage's toRGB) and ``G/b8/fade``
(the blend); in D, ``D/b8/fade_down`` (downsampled image into the previous fromRGB) and
``D/b8/fade`` (the blend with the new block's output).
"""

from __future__ import annotations

import math

import networkx as nx

from .defaults import d_layers, g_layers
from .ops import OPS, LayerCtx, to_rgb_params
from .schema import Spec


def _ctx(spec: Spec, network: str, res: int, cin: int, cout: int, op_name: str | None = None) -> LayerCtx:
    o = spec.architecture.options
    norm = ("batch" if network == "G" and o.batch_norm else "layer" if network == "D" and o.layer_norm else None)
    return LayerCtx(
        network=network, resolution=res, in_channels=cin, out_channels=cout, equalized=o.equalized_lr,
        lrelu_slope=0.0 if (network == "G" and o.g_activation == "relu") else o.lrelu_slope,
        pixel_norm_eps=o.pixel_norm_eps if (network == "G" and o.pixel_norm) else None,
        mbstd_group_size=o.mbstd_group_size, mbstd_num_features=o.mbstd_num_features,
        # The normalizations wrap the weighted layers (Theano BN(WS(conv)), LN(WS(conv))), not fromRGB.
        norm=norm if (op_name is not None and OPS.get(op_name).normalizable) else None,
        mbdisc_kernels=o.mbdisc_kernels, mbdisc_kernel_dim=o.mbdisc_kernel_dim,
    )


def _names(layers: list[str]) -> list[str]:
    """conv0, conv1, dense0, up, down, mbstd: names that read like the official variable scopes."""
    counts: dict[str, int] = {}
    names = []
    for op in layers:
        base = {"upsample": "up", "downsample": "down", "mbstd": "mbstd", "mbstd_gan_zoo": "mbstd",
                "mbdisc": "mbdisc"}.get(op)
        if base is None and not OPS.get(op).takes_channels:
            base = op  # a parameterless or self-sized op (a plug-in's too) is named for itself
            base = base if base not in names else f"{base}{names.count(base)}"
        if base is None:
            base = "dense" if op.startswith("dense") else "conv"
            names.append(f"{base}{counts.get(base, 0)}")
            counts[base] = counts.get(base, 0) + 1
        else:
            names.append(base)
    return names


def to_graph(spec: Spec) -> nx.DiGraph:
    """Expand a validated spec into its layer graph (pure: the spec is not changed)."""
    arch = spec.architecture
    img_c = arch.image_channels
    g = nx.DiGraph(name=spec.name, spec=spec, latent_size=arch.latent_size, label_size=spec.label_size(),
                   image_channels=img_c,
                   resolutions=[r.resolution for r in arch.generator])

    # ---- Generator.
    labels = spec.label_size()
    norm = "pixnorm" if arch.options.normalize_latent else "-"
    g.add_node("G/latent", network="G", kind="input", op="latent", resolution=None, stage=-1, order=0,
               in_channels=arch.latent_size, out_channels=arch.latent_size, out_shape=(arch.latent_size,),
               params=0, activation="-" if labels else norm, layer="latent",
               normalize_latent=arch.options.normalize_latent, pixel_norm_eps=arch.options.pixel_norm_eps,
               tanh_output=arch.options.g_output == "tanh",  # G-wide: tanh after the fade blend (Theano Gtanh)
               label_size=labels)  # with labels, the pixel norm runs on the concatenation (G/concat)
    prev_last = "G/latent"
    prev_rgb = None
    channels = arch.latent_size
    if labels:
        prev_last, channels = _label_inputs(g, arch.latent_size, labels, norm)
    for stage, row in enumerate(arch.generator):
        res, size = row.resolution, (1 if stage == 0 else arch.generator[stage - 1].resolution)
        layers = g_layers(spec, stage)
        for order, (op_name, name) in enumerate(zip(layers, _names(layers))):
            op = OPS.get(op_name)
            ctx = _ctx(spec, "G", res, channels, row.channels if op.takes_channels else channels, op_name)
            size, channels = op.out_size(size), op.out_channels(ctx)
            node = f"G/b{res}/{name}"
            g.add_node(node, network="G", kind="layer", op=op_name, layer=name, resolution=res, stage=stage,
                       order=order, in_channels=ctx.in_channels, out_channels=channels,
                       out_shape=(channels, size, size), params=op.params(ctx), activation=op.activation(ctx), ctx=ctx)
            g.add_edge(prev_last, node)
            prev_last = node
        rgb = f"G/b{res}/torgb"
        g.add_node(rgb, network="G", kind="torgb", op="conv1x1", layer="torgb", resolution=res, stage=stage,
                   order=len(layers), in_channels=channels, out_channels=img_c, out_shape=(img_c, res, res),
                   params=to_rgb_params(channels, img_c), gain=1.0,
                   activation="linear, tanh" if arch.options.g_output == "tanh" else "linear",  # tanh after the blend
                   equalized=arch.options.equalized_lr)
        g.add_edge(prev_last, rgb)
        if prev_rgb is not None:
            up, fade = f"G/b{res}/fade_up", f"G/b{res}/fade"
            g.add_node(up, network="G", kind="fade", op="upsample", layer="fade_up", resolution=res, stage=stage,
                       order=len(layers) + 1, in_channels=img_c, out_channels=img_c, out_shape=(img_c, res, res),
                       params=0, activation="-")
            g.add_node(fade, network="G", kind="fade", op="lerp", layer="fade", resolution=res, stage=stage,
                       order=len(layers) + 2, in_channels=img_c, out_channels=img_c, out_shape=(img_c, res, res),
                       params=0, activation="(1-a)*old + a*new")
            g.add_edge(prev_rgb, up, role="old")
            g.add_edge(up, fade, role="old")
            g.add_edge(rgb, fade, role="new")
        prev_rgb = rgb

    # ---- Discriminator (rows run from the top resolution down to 4x4, as in Table 2).
    top = arch.discriminator[0].resolution
    g.add_node("D/image", network="D", kind="input", op="image", layer="image", resolution=top, stage=-1, order=0,
               in_channels=img_c, out_channels=img_c, out_shape=(img_c, top, top), params=0, activation="-")
    n = len(arch.discriminator)
    prev_block_last: str | None = None
    for index, row in enumerate(arch.discriminator):
        stage, res = n - 1 - index, row.resolution
        cin, cout = row.channels
        layers = d_layers(spec, index)
        frgb = f"D/b{res}/fromrgb"
        frgb_ctx = _ctx(spec, "D", res, img_c, cin)
        g.add_node(frgb, network="D", kind="fromrgb", op="conv1x1", layer="fromrgb", resolution=res, stage=stage,
                   order=0, in_channels=img_c, out_channels=cin, out_shape=(cin, res, res),
                   params=to_rgb_params(img_c, cin), activation=f"lrelu {frgb_ctx.lrelu_slope:g}",
                   gain=math.sqrt(2), ctx=frgb_ctx)
        g.add_edge("D/image", frgb)
        weighted = [i for i, op in enumerate(layers) if OPS.get(op).takes_channels]
        channels, size, last = cin, res, frgb
        first_layer = None
        for order, (op_name, name) in enumerate(zip(layers, _names(layers))):
            op = OPS.get(op_name)
            want = cout if order == weighted[-1] else cin
            ctx = _ctx(spec, "D", res, channels, want if op.takes_channels else channels, op_name)
            size, channels = op.out_size(size), op.out_channels(ctx)
            node = f"D/b{res}/{name}"
            shape = (channels, size, size) if size > 1 else (channels,)
            g.add_node(node, network="D", kind="layer", op=op_name, layer=name, resolution=res, stage=stage,
                       order=order + 1, in_channels=ctx.in_channels, out_channels=channels, out_shape=shape,
                       params=op.params(ctx), activation=op.activation(ctx), ctx=ctx)
            g.add_edge(last, node)
            first_layer = first_layer or node
            last = node
        if index == n - 1:
            out = "D/b4/out"
            g.add_node(out, network="D", kind="output", op="dense", layer="out", resolution=res, stage=stage,
                       order=len(layers) + 1, in_channels=channels, out_channels=1 + labels, out_shape=(1 + labels,),
                       params=(channels + 1) * (1 + labels), activation="linear", gain=1.0,
                       equalized=arch.options.equalized_lr)
            g.add_edge(last, out)
            if labels:
                _label_outputs(g, out, labels, res, stage, len(layers) + 2)
        # The block above feeds this block's first layer, directly or through its fade.
        if prev_block_last is not None:
            above = arch.discriminator[index - 1].resolution
            after = len(d_layers(spec, index - 1)) + 1  # listed after the block above, which they belong to
            down, fade = f"D/b{above}/fade_down", f"D/b{above}/fade"
            g.add_node(down, network="D", kind="fade", op="downsample", layer="fade_down", resolution=above,
                       stage=stage + 1, order=after, in_channels=img_c, out_channels=img_c,
                       out_shape=(img_c, res, res), params=0, activation="-")
            g.add_node(fade, network="D", kind="fade", op="lerp", layer="fade", resolution=above, stage=stage + 1,
                       order=after + 1, in_channels=cin, out_channels=cin, out_shape=(cin, res, res),
                       params=0, activation="(1-a)*old + a*new")
            g.add_edge("D/image", down, role="old")
            g.add_edge(down, frgb, role="old")
            g.add_edge(frgb, fade, role="old")
            g.add_edge(prev_block_last, fade, role="new")
            g.add_edge(fade, first_layer)
            g.add_edge(prev_block_last, first_layer)
        prev_block_last = last
    return g


def _label_inputs(g: nx.DiGraph, latent: int, labels: int, norm: str) -> tuple[str, int]:
    """Official G_paper with labels: the one-hot labels are concatenated to the latent and the pair is
    pixel-normalised together before the first dense layer. Returns (the node feeding it, its width)."""
    width = latent + labels
    g.add_node("G/labels", network="G", kind="input", op="labels", resolution=None, stage=-1, order=1,
               in_channels=labels, out_channels=labels, out_shape=(labels,), params=0, activation="one-hot",
               layer="labels")
    g.add_node("G/concat", network="G", kind="input", op="concat", resolution=None, stage=-1, order=2,
               in_channels=width, out_channels=width, out_shape=(width,), params=0, activation=norm, layer="concat")
    g.add_edge("G/latent", "G/concat")
    g.add_edge("G/labels", "G/concat")
    return "G/concat", width


def _label_outputs(g: nx.DiGraph, out: str, labels: int, res: int, stage: int, order: int) -> None:
    """Official D_paper with labels: its last dense layer has 1 + label_size outputs, column 0 the
    score and the rest the label logits of the auxiliary classifier."""
    for i, (name, width) in enumerate((("score", 1), ("label_logits", labels))):
        node = f"D/b{res}/{name}"
        g.add_node(node, network="D", kind="output", op="slice", layer=name, resolution=res, stage=stage,
                   order=order + i, in_channels=1 + labels, out_channels=width, out_shape=(width,), params=0,
                   activation="linear")
        g.add_edge(out, node)


def block_nodes(graph: nx.DiGraph, network: str, resolution: int, kinds: tuple[str, ...] = ("layer",)) -> list[str]:
    """The nodes of one block, in order."""
    nodes = [n for n, a in graph.nodes(data=True)
             if a["network"] == network and a["resolution"] == resolution and a["kind"] in kinds]
    return sorted(nodes, key=lambda n: graph.nodes[n]["order"])


def param_count(graph: nx.DiGraph, network: str) -> int:
    """Trainable parameters of one network over all stages (every toRGB/fromRGB included)."""
    return sum(a["params"] for _, a in graph.nodes(data=True) if a["network"] == network)
