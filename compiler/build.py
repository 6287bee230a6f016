"""Stage 4: turn the layer graph into growable PyTorch modules."""

from __future__ import annotations

from collections import OrderedDict

from typing import TYPE_CHECKING

import networkx as nx

from .graph import block_nodes
from .ops import OPS

if TYPE_CHECKING:
    from torch import nn

    from progan_zoo.nn import Block, Discriminator, Generator


def _block(graph: nx.DiGraph, network: str, res: int) -> "Block":
    # torch is imported here, not at module level: `import progan_zoo.compiler` stays light.
    from progan_zoo.nn import Block, EqualizedLinear

    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    for node in block_nodes(graph, network, res, kinds=("layer", "output")):
        a = graph.nodes[node]
        if a["kind"] == "output" and a["op"] == "slice":
            continue  # the score / label-logit columns of the output layer: no module of their own
        if a["kind"] == "output":
            # Official D's last layer: dense to 1 score, gain 1, linear.
            layers[a["layer"]] = EqualizedLinear(a["in_channels"], a["out_channels"], gain=a["gain"],
                                                 equalized=a["equalized"])
        else:
            layers[a["layer"]] = OPS.get(a["op"]).make(a["ctx"])
    return Block(res, layers)


def _resolutions(graph: nx.DiGraph, network: str, rgb: str) -> list[int]:
    """The resolutions of ``network``, lowest first, read from its ``rgb`` nodes (one per resolution)."""
    return sorted(a["resolution"] for _, a in graph.nodes(data=True) if a["network"] == network and a["kind"] == rgb)


def _blocks_and_rgbs(graph: nx.DiGraph, network: str, rgb: str) -> tuple[list[Block], list["nn.Module"]]:
    """``network``'s blocks and its ``rgb`` 1x1 convs (G's torgb, D's fromrgb), one of each per
    resolution, built in that order so fresh weights draw the same random numbers as before."""
    from progan_zoo.nn import EqualizedConv2d

    blocks, rgbs = [], []
    for res in _resolutions(graph, network, rgb):
        blocks.append(_block(graph, network, res))
        a = graph.nodes[f"{network}/b{res}/{rgb}"]
        # G's toRGB is linear (official G_paper); D's fromRGB carries its leaky ReLU (its ctx).
        ctx = a.get("ctx")
        rgbs.append(EqualizedConv2d(a["in_channels"], a["out_channels"], 1, gain=a["gain"],
                                    equalized=ctx.equalized if ctx is not None else a["equalized"],
                                    lrelu_slope=ctx.lrelu_slope if ctx is not None else None))
    return blocks, rgbs


def _image_channels(graph: nx.DiGraph) -> int:
    """Channels of G's images: the out channels of its toRGB nodes."""
    return next(a["out_channels"] for _, a in graph.nodes(data=True) if a["kind"] == "torgb")


def build_generator(graph: nx.DiGraph) -> "Generator":
    from progan_zoo.nn import Generator

    latent = graph.nodes["G/latent"]
    blocks, rgbs = _blocks_and_rgbs(graph, "G", "torgb")
    return Generator(blocks, rgbs, z_dim=latent["out_channels"], image_channels=_image_channels(graph),
                     normalize_latent=latent["normalize_latent"], pixel_norm_eps=latent["pixel_norm_eps"],
                     tanh_output=latent["tanh_output"], label_size=latent["label_size"])


def build_discriminator(graph: nx.DiGraph) -> "Discriminator":
    from progan_zoo.nn import Discriminator

    blocks, rgbs = _blocks_and_rgbs(graph, "D", "fromrgb")
    # D's output layer holds the score, then one logit per class (AC-GAN).
    return Discriminator(blocks, rgbs, image_channels=graph.nodes["D/image"]["out_channels"],
                         label_size=graph.nodes["D/b4/out"]["out_channels"] - 1)


def build(graph: nx.DiGraph) -> tuple["Generator", "Discriminator"]:
    """Build G and D with fresh weights (N(0,1), biases 0) from a graph made by ``to_graph``; every
    fact comes from the graph's nodes."""
    return build_generator(graph), build_discriminator(graph)
