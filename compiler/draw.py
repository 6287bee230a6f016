"""Pictures of the layer graph: DOT text always, PNG/SVG through graphviz or matplotlib.

The fade paths of the paper's Figure 2 are drawn as their own nodes: in G the previous toRGB
upsampled (weight 1 - a) blended with the new toRGB (weight a); in D the downsampled image
through the previous fromRGB (1 - a) blended with the new block's output (a).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import SpecError
from .summary import human, layer_label, shape_text

FORMATS = (".dot", ".gv", ".png", ".svg")

_FILL = {"input": "#d9f2d9", "output": "#d9f2d9", "layer": "#ffffff", "torgb": "#dbe8fb",
         "fromrgb": "#dbe8fb", "fade": "#fde7cf"}
_EDGE = {"old": ("#e07b00", "dashed", "1-a"), "new": ("#2f9e44", "solid", "a"), "main": ("#555555", "solid", "")}


def _node_text(a: dict[str, Any]) -> list[str]:
    lines = [layer_label(a).replace("fade: ", ""), shape_text(a["out_shape"])]
    if a["params"]:
        lines.append(human(a["params"]))
    return lines


def to_dot(graph: nx.DiGraph) -> str:
    """Graphviz DOT text: one cluster per network and block, fade nodes and paths highlighted."""
    out = [f'digraph "{graph.graph["name"]}" {{', "  rankdir=LR; newrank=true; compound=true;",
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
           '  edge [fontname="Helvetica", fontsize=9];']
    for network, title in (("G", "Generator"), ("D", "Discriminator")):
        out.append(f'  subgraph "cluster_{network}" {{ label="{title}"; fontsize=14; style=rounded;')
        blocks: dict[Any, list[str]] = {}
        for n, a in graph.nodes(data=True):
            if a["network"] == network:
                blocks.setdefault(a["resolution"] if a["kind"] != "input" else None, []).append(n)
        for res, nodes in blocks.items():
            if res is not None:
                out.append(f'    subgraph "cluster_{network}{res}" {{ label="{res}x{res}"; style=dashed; color="#999999";')
            for n in sorted(nodes, key=lambda n: graph.nodes[n]["order"]):
                a = graph.nodes[n]
                label = "\\n".join(_node_text(a))
                style = '"rounded,filled,dashed"' if a["kind"] == "fade" else '"rounded,filled"'
                shape = "ellipse" if a["kind"] == "fade" else "box"
                out.append(f'      "{n}" [label="{label}", fillcolor="{_FILL[a["kind"]]}", style={style}, shape={shape}];')
            if res is not None:
                out.append("    }")
        out.append("  }")
    for u, v, d in graph.edges(data=True):
        color, style, label = _EDGE[d.get("role", "main")]
        extra = f', label="{label}"' if label else ""
        out.append(f'  "{u}" -> "{v}" [color="{color}", style={style}{extra}];')
    out.append("}")
    return "\n".join(out) + "\n"


def write_graph_picture(graph: nx.DiGraph, path: str | Path) -> str:
    """Write ``path`` (.dot/.gv, .png or .svg); returns which renderer was used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SpecError(f"cannot write a graph picture as '{suffix or path.name}'", str(path),
                        hint=f"use one of: {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    dot_text = to_dot(graph)
    if suffix in (".dot", ".gv"):
        path.write_text(dot_text)
        return "dot text"
    dot = shutil.which("dot")
    if dot:
        run = subprocess.run([dot, f"-T{suffix[1:]}", "-o", str(path)], input=dot_text, text=True,
                             capture_output=True, check=False)
        if run.returncode == 0:
            return "graphviz"
    draw_matplotlib(graph, path)
    return "matplotlib"


# --------------------------------------------------------------------------- matplotlib fallback

def _layout(graph: nx.DiGraph, network: str) -> dict[str, tuple[int, int]]:
    """(column, row) per node: one column per block in data-flow order, a grid of aligned rows.

    G: the block's layers, then every column's toRGB on one row, the blend below it and the
    upsampled previous toRGB below that. D: the downsampled image, fromRGB and the blend on the
    first three rows (in the column of the block they feed), then the block's layers. Every
    arrow then points right or down, except the short one from the upsampled toRGB to the blend.
    """
    res = graph.graph["resolutions"]
    col_of = {r: i + 1 for i, r in enumerate(res if network == "G" else res[::-1])}
    nodes = [(n, a) for n, a in graph.nodes(data=True) if a["network"] == network]
    n_layers = max(a["order"] for _, a in nodes if a["kind"] == "layer") + 1
    pos: dict[str, tuple[int, int]] = {}
    for n, a in nodes:
        kind = a["kind"]
        if kind == "input":
            pos[n] = (0, a["order"] if network == "G" else 1)  # G: latent, then labels and their concat
        elif network == "G":
            row = {"layer": a["order"], "torgb": n_layers, "fade": n_layers + (1 if a["op"] == "lerp" else 2)}[kind]
            pos[n] = (col_of[a["resolution"]], row)
        elif kind == "fade":
            pos[n] = (col_of[a["resolution"] // 2], 0 if a["op"] == "downsample" else 2)
        else:  # fromRGB has order 0, the layers and the output follow it
            pos[n] = (col_of[a["resolution"]], 1 if kind == "fromrgb" else 2 + a["order"])
    return pos


def draw_matplotlib(graph: nx.DiGraph, path: str | Path) -> None:
    """A layered left-to-right drawing of G (top) and D (bottom) without graphviz."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    layouts = {net: _layout(graph, net) for net in ("G", "D")}
    n_cols = max(c for lay in layouts.values() for c, _ in lay.values()) + 1
    rows = {net: max(r for _, r in lay.values()) + 1 for net, lay in layouts.items()}
    col_w, row_h, box_w, box_h = 2.4, 1.05, 1.9, 0.8
    fig_w = max(8.0, n_cols * col_w * 0.95)
    heights = [rows["G"] * row_h + 1.0, rows["D"] * row_h + 1.0]
    fig, axes = plt.subplots(2, 1, figsize=(fig_w, sum(heights) * 0.9), gridspec_kw={"height_ratios": heights})
    title = {"G": "Generator", "D": "Discriminator"}
    for ax, net in zip(axes, ("G", "D")):
        lay = layouts[net]
        xy = {n: (c * col_w, -r * row_h) for n, (c, r) in lay.items()}
        ax.set_xlim(-box_w / 2 - 0.2, (n_cols - 1) * col_w + box_w / 2 + 0.6)
        ax.set_ylim(-(rows[net] - 1) * row_h - box_h / 2 - 0.3, box_h / 2 + 0.55)
        ax.axis("off")
        ax.set_title(f"{title[net]} ({graph.graph['name']})", loc="left", fontsize=12, fontweight="bold")
        # Column headers: the block resolution.
        seen_cols = {}
        for n, (c, _) in lay.items():
            a = graph.nodes[n]
            if a["kind"] == "input":
                seen_cols[c] = "input"
            elif not (net == "D" and a["kind"] == "fade"):
                seen_cols[c] = f"{a['resolution']}x{a['resolution']}"
        for c, text in seen_cols.items():
            ax.text(c * col_w, box_h / 2 + 0.3, text, ha="center", va="center", fontsize=9, color="#444444")
        for u, v, d in graph.edges(data=True):
            if u not in xy or v not in xy:
                continue
            color, style, label = _EDGE[d.get("role", "main")]
            (x0, y0), (x1, y1) = xy[u], xy[v]
            if graph.nodes[u]["kind"] == "input" and lay[v][0] - lay[u][0] > 1:
                # The image reaches every stage's fromRGB; a stub labelled x keeps the picture clear.
                start, end = (x1 - box_w / 2 - 0.3, y1 + 0.22), (x1 - box_w / 2, y1 + 0.22)
                ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=8, color=color, lw=0.9,
                                             linestyle="--" if style == "dashed" else "-", zorder=1))
                ax.text(start[0] - 0.02, start[1], "x", color=color, fontsize=8, ha="right", va="center",
                        style="italic")
                continue
            rad = 0.0
            if abs(x0 - x1) < 1e-6:  # same column: straight, or an arc around the boxes in between
                (c, r0), r1 = lay[u], lay[v][1]
                between = any(cc == c and min(r0, r1) < rr < max(r0, r1) for cc, rr in lay.values())
                sign = 1 if y1 < y0 else -1  # 1: downwards
                start, end = (x0, y0 - sign * box_h / 2), (x1, y1 + sign * box_h / 2)
                if between:
                    start, end, rad = (x0 + box_w / 2, y0), (x1 + box_w / 2, y1), -0.35 * sign
            else:
                start, end = (x0 + box_w / 2, y0), (x1 - box_w / 2, y1)
                rad = 0.0 if abs(y0 - y1) < 1e-6 else 0.08
            arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=color, lw=1.0,
                                    linestyle="--" if style == "dashed" else "-",
                                    connectionstyle=f"arc3,rad={rad}", zorder=1)
            ax.add_patch(arrow)
            if label:
                # At the apex of the arc3 curve: the chord midpoint moved by rad/2 along the normal.
                dx, dy = end[0] - start[0], end[1] - start[1]
                lx = (start[0] + end[0]) / 2 + 0.5 * rad * dy
                ly = (start[1] + end[1]) / 2 - 0.5 * rad * dx
                ax.text(lx, ly, label, color=color, fontsize=8, ha="center", va="center", zorder=3,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
        for n, (x, y) in xy.items():
            a = graph.nodes[n]
            box = FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                 fc=_FILL[a["kind"]], ec="#e07b00" if a["kind"] == "fade" else "#333333",
                                 lw=0.9, linestyle="--" if a["kind"] == "fade" else "-", zorder=2)
            ax.add_patch(box)
            lines = _node_text(a)
            ax.text(x, y + 0.14, lines[0], ha="center", va="center", fontsize=8, fontweight="bold", zorder=3)
            ax.text(x, y - 0.16, "   ".join(lines[1:]), ha="center", va="center", fontsize=7, color="#333333", zorder=3)
    handles = [Patch(fc=_FILL["layer"], ec="#333333", label="layer"),
               Patch(fc=_FILL["torgb"], ec="#333333", label="toRGB / fromRGB"),
               Patch(fc=_FILL["fade"], ec="#e07b00", ls="--", label="fade node (no weights)"),
               Line2D([], [], color=_EDGE["old"][0], ls="--", label="old path, weight 1-a"),
               Line2D([], [], color=_EDGE["new"][0], label="new block, weight a"),
               Line2D([], [], color=_EDGE["main"][0], marker="$x$", ls="none",
                      label="x: the image at the active stage's resolution")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110 if Path(path).suffix.lower() == ".png" else None)
    plt.close(fig)
