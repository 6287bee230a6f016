"""The compiled networks as tables in the layout of the paper's Table 2, and the other CLI views.

Everything here reads the layer graph (or the raw spec); nothing imports torch, so the tables
can be printed without building the modules.
"""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from .graph import param_count
from .load import RawSpec
from .ops import OPS
from .schema import Spec

COLUMNS = ("Layer", "Act.", "Output shape", "Params", "")


def human(n: int) -> str:
    """Parameter counts as the paper prints them: 513, 2.3k, 4.2M."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def shape_text(shape: tuple[int, ...]) -> str:
    """An output shape as Table 2 writes it: C x H x W, vectors as C x 1 x 1."""
    dims = tuple(shape) + (1, 1) if len(shape) == 1 else tuple(shape)
    return " x ".join(str(d) for d in dims)


def layer_label(attrs: dict[str, Any]) -> str:
    """The Table 2 name of a graph node."""
    kind, op = attrs["kind"], attrs["op"]
    if kind == "input":
        return {"latent": "Latent vector", "labels": "Labels (one-hot)", "concat": "Concat [latent, labels]"}.get(
            op, "Input image")
    if kind == "torgb":
        return "toRGB (Conv 1x1)"
    if kind == "fromrgb":
        return "fromRGB (Conv 1x1)"
    if kind == "output":
        return {"slice": "Score" if attrs["layer"] == "score" else "Label logits"}.get(op, "Fully-connected")
    if kind == "fade":
        return "fade: Downsample image" if op == "downsample" else ("fade: Upsample toRGB" if op == "upsample"
                                                                      else "fade: lerp(old, new, a)")
    return OPS.get(op).label


def _row(graph: nx.DiGraph, node: str) -> dict[str, Any]:
    a = graph.nodes[node]
    return {"node": node, "block": a["resolution"], "kind": a["kind"], "op": a["op"], "layer": layer_label(a),
            "activation": a["activation"], "shape": list(a["out_shape"]), "params": int(a["params"])}


def table_rows(graph: nx.DiGraph, network: str, fade: bool = False) -> list[dict[str, Any]]:
    """One dict per layer of ``network`` ("G" or "D") in Table 2 order, grouped by block resolution.

    Every toRGB / fromRGB is listed (they are trainable and counted in the totals); the fade
    nodes (no parameters) only with ``fade``.
    """
    kinds = ("layer", "torgb", "fromrgb", "output") + (("fade",) if fade else ())
    resolutions = graph.graph["resolutions"]
    inputs = [n for n in ("G/latent", "G/labels", "G/concat") if n in graph] if network == "G" else ["D/image"]
    rows = [_row(graph, n) for n in inputs]
    order = resolutions if network == "G" else resolutions[::-1]
    for res in order:
        nodes = [n for n, a in graph.nodes(data=True)
                 if a["network"] == network and a["resolution"] == res and a["kind"] in kinds]
        rows += [_row(graph, n) for n in sorted(nodes, key=lambda n: graph.nodes[n]["order"])]
    return rows


def network_table(graph: nx.DiGraph, network: str, fade: bool = False) -> str:
    """The Table 2 layout for one network: a header, one row per layer, block headers, the total."""
    title = "Generator" if network == "G" else "Discriminator"
    rows = table_rows(graph, network, fade)
    cells: list[tuple[str, ...] | str] = []
    block = None
    for r in rows:
        if r["kind"] != "input" and r["block"] != block:
            block = r["block"]
            cells.append(f"{block}x{block}")
        params = f"{r['params']:,}" if r["params"] else "-"
        compact = human(r["params"]) if r["params"] else ""
        indent = "" if r["kind"] == "input" else "  "
        cells.append((indent + r["layer"], r["activation"], shape_text(r["shape"]), params, compact))
    total = param_count(graph, network)
    total_row = ("Total trainable parameters", "", "", f"{total:,}", human(total))
    table = [c for c in cells if isinstance(c, tuple)] + [total_row]
    widths = [max(len(COLUMNS[i]), *(len(c[i]) for c in table)) for i in range(len(COLUMNS))]

    def fmt(c: tuple[str, ...]) -> str:
        return (f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}  {c[3]:>{widths[3]}}"
                f"  {c[4]:>{widths[4]}}").rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [title, fmt((COLUMNS[0], COLUMNS[1], COLUMNS[2], COLUMNS[3], "")), rule]
    for c in cells:
        lines.append(fmt(c) if isinstance(c, tuple) else c)
    lines += [rule, fmt(total_row)]
    return "\n".join(lines)


def compile_report(graph: nx.DiGraph, spec: Spec, file: str, fade: bool = False) -> str:
    """The `progan-zoo compile` output: G's table, D's table and both totals."""
    g_total, d_total = param_count(graph, "G"), param_count(graph, "D")
    res = graph.graph["resolutions"]
    head = (f"{spec.name} rev {spec.revision} ({file}): {res[0]}x{res[0]} -> {res[-1]}x{res[-1]}, "
            f"{len(res)} stages, latent {spec.architecture.latent_size}, {spec.architecture.image_channels} image channel(s)")
    totals = f"G: {g_total:,} parameters ({human(g_total)})\nD: {d_total:,} parameters ({human(d_total)})"
    # Ops from installed packages (progan_zoo.ops entry points) are named with the package they came from.
    plugins = sorted({(a["op"], OPS.get(a["op"]).plugin) for _, a in graph.nodes(data=True)
                      if a["op"] in OPS and OPS.get(a["op"]).plugin})
    if plugins:
        totals += "\nplug-in ops: " + ", ".join(f"{op} (from {dist})" for op, dist in plugins)
    return "\n\n".join([head, network_table(graph, "G", fade), network_table(graph, "D", fade), totals])


def compile_json(graph: nx.DiGraph, spec: Spec, raw: RawSpec, fade: bool = False) -> dict[str, Any]:
    """Machine-readable form of ``compile_report``."""
    return {
        "name": spec.name, "revision": spec.revision, "file": raw.file, "sha256": raw.sha256,
        "resolutions": graph.graph["resolutions"],
        "generator": {"rows": table_rows(graph, "G", fade), "total": param_count(graph, "G")},
        "discriminator": {"rows": table_rows(graph, "D", fade), "total": param_count(graph, "D")},
    }


# --------------------------------------------------------------------------- --stop-after views

def _positions(raw: RawSpec, node: Any, path: list, depth: int, out: list[dict[str, Any]], max_depth: int) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            sub = path + [key]
            line, col = raw.position(sub)
            if isinstance(value, dict):
                what = f"mapping, {len(value)} key(s)"
            elif isinstance(value, list):
                what = f"list, {len(value)} item(s)"
            else:
                what = json.dumps(value)
            out.append({"path": sub, "line": line, "column": col, "depth": depth, "value": what})
            if depth < max_depth:
                _positions(raw, value, sub, depth + 1, out, max_depth)


def load_summary(raw: RawSpec, max_depth: int = 2) -> list[dict[str, Any]]:
    """The parsed keys down to ``max_depth`` with their 1-based line and column."""
    out: list[dict[str, Any]] = []
    _positions(raw, raw.data, [], 0, out, max_depth - 1)
    return out


def load_report(raw: RawSpec) -> str:
    lines = [f"loaded {raw.file}: {len(raw.text.splitlines())} lines, sha256 {raw.sha256}"]
    entries = load_summary(raw)
    width = max((2 * e["depth"] + len(str(e["path"][-1])) for e in entries), default=0)
    for e in entries:
        key = "  " * e["depth"] + str(e["path"][-1])
        where = f"{e['line']}:{e['column']}"
        lines.append(f"  {key:<{width}}  {where:<7}  {e['value']}")
    return "\n".join(lines)


def validate_summary(spec: Spec) -> dict[str, Any]:
    arch, tr = spec.architecture, spec.training
    res = [r.resolution for r in arch.generator]
    return {
        "name": spec.name, "revision": spec.revision, "spec_version": spec.spec_version, "source": spec.source,
        "license": spec.license, "resolutions": res, "latent_size": arch.latent_size,
        "image_channels": arch.image_channels, "mbstd_group_size": arch.options.mbstd_group_size,
        "loss": tr.loss.name, "total_kimg": tr.total_kimg, "stabilize_kimg": tr.defaults.stabilize_kimg,
        "fade_kimg": tr.defaults.fade_kimg, "minibatch": tr.defaults.minibatch,
        "learning_rate": tr.defaults.learning_rate, "schedule_overrides": len(tr.schedule),
        "mirror_augment": tr.mirror_augment, "data": spec.data.source, "metrics": list(spec.evaluation.metrics),
    }


def validate_report(spec: Spec) -> str:
    s = validate_summary(spec)
    res = s["resolutions"]
    return "\n".join([
        f"OK: {s['name']} rev {s['revision']}",
        f"  networks:  {res[0]}x{res[0]} -> {res[-1]}x{res[-1]} ({len(res)} stages), latent {s['latent_size']}, "
        f"{s['image_channels']} image channel(s), mbstd group {s['mbstd_group_size']}",
        f"  training:  {s['loss']}, {s['total_kimg']:g} kimg, stabilize {s['stabilize_kimg']:g} + fade "
        f"{s['fade_kimg']:g} kimg per resolution, minibatch {s['minibatch']}, lr {s['learning_rate']:g}, "
        f"{s['schedule_overrides']} per-resolution override(s), mirror {'on' if s['mirror_augment'] else 'off'}",
        f"  data:      {s['data']}",
        f"  metrics:   {', '.join(s['metrics'])}",
        f"  source:    {s['source']}",
        f"  licence:   {s['license']}",
    ])


def graph_json(graph: nx.DiGraph) -> dict[str, Any]:
    """Nodes (without build-only attributes) and edges of the layer graph."""
    keep = ("network", "kind", "op", "layer", "resolution", "stage", "order", "in_channels", "out_channels",
            "out_shape", "params", "activation")
    nodes = [{"id": n, **{k: (list(a[k]) if k == "out_shape" else a[k]) for k in keep}}
             for n, a in graph.nodes(data=True)]
    edges = [{"from": u, "to": v, "role": a.get("role", "main")} for u, v, a in graph.edges(data=True)]
    return {"name": graph.graph["name"], "nodes": nodes, "edges": edges}


def graph_report(graph: nx.DiGraph) -> str:
    fades = sum(1 for _, a in graph.nodes(data=True) if a["kind"] == "fade")
    lines = [f"graph {graph.graph['name']}: {graph.number_of_nodes()} nodes ({fades} fade), "
             f"{graph.number_of_edges()} edges"]
    width = max(len(n) for n in graph.nodes)
    for n, a in graph.nodes(data=True):
        ins = ", ".join(f"{u}" + (f" ({d['role']})" if "role" in d else "") for u, _, d in graph.in_edges(n, data=True))
        lines.append(f"  {n:<{width}}  {a['op']:<10} {a['in_channels']:>5} -> {a['out_channels']:<5} "
                     f"{shape_text(a['out_shape']):<18} {a['params']:>12,}  <- {ins or '-'}")
    return "\n".join(lines)
