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
        if a["kind"] == "output":
            # Official D's last layer: dense to 1 score, gain 1, linear.
            layers[a["layer"]] = EqualizedLinear(a["in_channels"], a["out_channels"], gain=a["gain"],
                                                 equalized=graph.graph["spec"].architecture.options.equalized_lr)
        else:
            layers[a["layer"]] = OPS.get(a["op"]).make(a["ctx"])
    return Block(res, layers)


def _blocks_and_rgbs(graph: nx.DiGraph, network: str, rgb: str,
                     lrelu_slope: float | None = None) -> tuple[list[Block], list["nn.Module"]]:
    """``network``'s blocks and its ``rgb`` 1x1 convs (G's torgb, D's fromrgb), one of each per
    resolution, built in that order so fresh weights draw the same random numbers as before."""
    from progan_zoo.nn import EqualizedConv2d

    equalized = graph.graph["spec"].architecture.options.equalized_lr
    blocks, rgbs = [], []
    for res in graph.graph["resolutions"]:
        blocks.append(_block(graph, network, res))
        a = graph.nodes[f"{network}/b{res}/{rgb}"]
        rgbs.append(EqualizedConv2d(a["in_channels"], a["out_channels"], 1, gain=a["gain"], equalized=equalized,
                                    lrelu_slope=lrelu_slope))
    return blocks, rgbs


def build_generator(graph: nx.DiGraph) -> "Generator":
    from progan_zoo.nn import Generator

    opts = graph.graph["spec"].architecture.options
    blocks, rgbs = _blocks_and_rgbs(graph, "G", "torgb")  # toRGB is linear (official G_paper)
    return Generator(blocks, rgbs, z_dim=graph.graph["latent_size"], image_channels=graph.graph["image_channels"],
                     normalize_latent=opts.normalize_latent, pixel_norm_eps=opts.pixel_norm_eps,
                     tanh_output=opts.g_output == "tanh")


def build_discriminator(graph: nx.DiGraph) -> "Discriminator":
    from progan_zoo.nn import Discriminator

    opts = graph.graph["spec"].architecture.options
    blocks, rgbs = _blocks_and_rgbs(graph, "D", "fromrgb", lrelu_slope=opts.lrelu_slope)
    return Discriminator(blocks, rgbs, image_channels=graph.graph["image_channels"])


def build(graph: nx.DiGraph) -> tuple["Generator", "Discriminator"]:
    """Build G and D with fresh weights (N(0,1), biases 0) from a graph made by ``to_graph``."""
    return build_generator(graph), build_discriminator(graph)
