"""What a spec costs, read from its layer graph alone: parameters, FLOPs, memory and schedule time.

Nothing here allocates a tensor or imports torch, so the cost of a 1024x1024 spec (or of one no
machine could build) is known before anything is built.

Conventions (the tests hold the model to them, measured with torch on small specs):

* **FLOP** = 2 x multiply-accumulates of the convolutions and dense layers, the convention of
  ``torch.utils.flop_counter.FlopCounterMode`` (biases, activations, pixel norm, minibatch stddev,
  resampling and the fade blend are not counted; they are a few percent of the total).
* **Backward** of a weighted layer = its forward FLOPs once for the gradient of its input (skipped
  when the input needs none: the image into D's fromRGB outside the penalty, the latent into G's
  first layer) and once for the gradient of its weights (skipped when they are frozen: D in the
  G step).
* **WGAN-GP penalty** (section A.1): D on the mixed images (1x), the input gradient with
  ``create_graph`` (1x), and in ``backward`` the double backward (2x: the gradient of each
  transposed conv with respect to its input gradient and to its weights) plus the backward of the
  forward graph (2x). With D on the reals and the fakes (1x forward + 2x backward each), one D step
  costs ``G forward + sum over D's layers of (12 - 2 [fed by the image]) x forward``; without the
  penalty ``6 - 2 [fed by the image]``. One G step costs ``sum over G of (3 - [fed by the latent])
  x forward + 2 x D forward`` (D frozen). Per real image shown: the D step plus the G step divided
  by ``d_repeats`` (the trainer counts images in D steps).
* **Activation memory** per image = what autograd keeps for the backward pass (fp32): a conv or
  dense keeps its input, a leaky ReLU its input, a pixel norm its input and 1/norm, minibatch
  stddev its centred input; the penalty's ``create_graph`` keeps each weighted layer's output
  gradient and the input gradient, and its double backward sends each leaky ReLU's forward-graph
  input a gradient that waits for the forward graph's backward. A D step holds three D graphs (reals, fakes, mixed) plus the penalty graph; a G step
  one G graph and one D graph; the peak is the larger.
* **Fixed memory** = fp32 weights of G, G_ema and D (every stage, they are always held), gradients
  and Adam's two moments of the active layers, and the run-time scaled weight copies that
  equalized learning rate makes for each forward pass with a graph (3 of D in a D step).

Ops are looked up in ``OP_COSTS`` by the graph node's ``op``; a layer op without an entry is an
error that names the table, so a new op in ``ops.py`` must add its entry here (see ``OpCost``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import networkx as nx

from .schema import Spec

FLOAT_BYTES = 4  # fp32: the default, paper-faithful precision.


# --------------------------------------------------------------------------- per-op costs

def _elems(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _area(a: dict[str, Any]) -> int:
    shape = a["out_shape"]
    return shape[1] * shape[2] if len(shape) == 3 else 1


def _weights(a: dict[str, Any]) -> int:
    # Parameters less one bias per output channel (map): the multiplied weights.
    return a["params"] - a["out_channels"]


def _conv_macs(a: dict[str, Any]) -> int:
    """A 'same' convolution: every weight is used once per output pixel."""
    return _weights(a) * _area(a)


def _dense_macs(a: dict[str, Any]) -> int:
    """A dense layer: every weight is used once per image, whatever shape the output is given."""
    return _weights(a)


def _layer_saved(a: dict[str, Any]) -> float:
    """A weighted layer's output, kept by its consumer; its pre-activation, kept by the leaky ReLU;
    with pixel norm, its pre-norm value and 1/norm (one value per pixel)."""
    out = _elems(a["out_shape"])
    act = a["activation"]
    if a["kind"] in ("torgb", "output"):
        return 0.0  # G's image is counted as D's input; D's score is kept by nothing.
    n = out * (1 + act.startswith("lrelu"))
    if "pixnorm" in act:
        n += out + out / a["out_channels"]
    return float(n)


@dataclass(frozen=True)
class OpCost:
    """How one op costs: what a new entry of ``ops.OPS`` (or a new graph node op) must provide.

    ``macs`` gives the forward multiply-accumulates per image and ``saved`` the fp32 elements
    autograd keeps for the backward pass per image, both from the graph node's attributes
    (``out_shape``, ``in_channels``, ``out_channels``, ``params``, ``activation``, ``kind``,
    ``network``). Ops without weights have ``macs`` 0.
    """

    macs: Callable[[dict[str, Any]], int]
    saved: Callable[[dict[str, Any]], float]


def _resample_saved(a: dict[str, Any]) -> float:
    # Pooling/upsampling keep no tensor themselves; their output is kept by the next conv, except
    # G's fade_up, whose output only enters the blend.
    return 0.0 if (a["kind"] == "fade" and a["network"] == "G") else float(_elems(a["out_shape"]))


def _mbstd_saved(a: dict[str, Any]) -> float:
    # The centred input (kept by the square), the output (kept by the next conv); the per-group
    # std is a group's share of one input.
    out = _elems(a["out_shape"])
    return 2.0 * out


OP_COSTS: dict[str, OpCost] = {
    "conv1x1": OpCost(_conv_macs, _layer_saved),
    "conv3x3": OpCost(_conv_macs, _layer_saved),
    "dense4x4": OpCost(_dense_macs, _layer_saved),
    "dense": OpCost(_dense_macs, _layer_saved),          # D's output layer.
    "upsample": OpCost(lambda a: 0, _resample_saved),
    "downsample": OpCost(lambda a: 0, _resample_saved),
    "mbstd": OpCost(lambda a: 0, _mbstd_saved),
    "mbstd_gan_zoo": OpCost(lambda a: 0, _mbstd_saved),
    # pytorch_GAN_zoo's first G layer: one bias per value (16 per map), not one per map.
    "dense4x4_fullbias": OpCost(lambda a: a["params"] - 16 * a["out_channels"], _layer_saved),
    # The official fused ops run a 4x4 kernel (the 3x3 one padded and summed): G's as a stride-2
    # transposed conv over the input pixels (a quarter of the output's), D's as a stride-2 conv
    # over the output pixels, so each counts 16 of every 9 stored weights per pixel it runs on.
    "upconv3x3": OpCost(lambda a: _weights(a) * 16 // 9 * _area(a) // 4, _layer_saved),
    "conv3x3_down": OpCost(lambda a: _weights(a) * 16 // 9 * _area(a), _layer_saved),
    # The fade blend: D's blended features are kept by the next conv; G's blend is the image.
    "lerp": OpCost(lambda a: 0, lambda a: float(_elems(a["out_shape"])) if a["network"] == "D" else 0.0),
    # Inputs: the normalized latent keeps z and its output; D's image is kept by fromRGB.
    "latent": OpCost(lambda a: 0, lambda a: float(a["out_channels"] * (2 if a["activation"] == "pixnorm" else 1))),
    "image": OpCost(lambda a: 0, lambda a: float(_elems(a["out_shape"]))),
}


class CostModelError(KeyError):
    """A graph node whose op has no entry in ``OP_COSTS`` (a new op that forgot its cost)."""

    def __str__(self) -> str:
        return str(self.args[0])


def op_cost(op: str) -> OpCost:
    """The cost entry of ``op``; an unknown op is an error listing the known ones."""
    try:
        return OP_COSTS[op]
    except KeyError:
        raise CostModelError(f"the cost model has no entry for op '{op}': add an OpCost for it to OP_COSTS "
                             f"in compiler/cost.py (known: {', '.join(sorted(OP_COSTS))})") from None


# --------------------------------------------------------------------------- the active graph

def active_nodes(graph: nx.DiGraph, network: str, stage: int, fading: bool) -> list[str]:
    """The nodes of ``network`` that run at ``stage``: every block up to it, the newest toRGB or
    fromRGB, and while fading the previous one and the fade nodes (both paths run, Figure 2 b)."""
    out = []
    for n, a in graph.nodes(data=True):
        if a["network"] != network:
            continue
        s, kind = a["stage"], a["kind"]
        if kind in ("input", "output") or (kind == "layer" and s <= stage):
            out.append(n)
        elif kind in ("torgb", "fromrgb") and (s == stage or (fading and s == stage - 1)):
            out.append(n)
        elif kind == "fade" and fading and s == stage:
            out.append(n)
    return out


def _fed_by_input(graph: nx.DiGraph, node: str) -> bool:
    """Whether the node's input needs no gradient: it comes from the latent or the image (maybe resampled)."""
    for pred in graph.predecessors(node):
        a = graph.nodes[pred]
        if a["kind"] == "input" or (a["kind"] == "fade" and a["op"] == "downsample"):
            return True
    return False


# --------------------------------------------------------------------------- one stage

@dataclass(frozen=True)
class StageCost:
    """The cost of training one stage (stabilizing or fading in), per image and fixed."""

    stage: int
    resolution: int
    fading: bool
    minibatch: int
    g_params: int                  # Parameters of the active layers.
    d_params: int
    g_forward_flops: int           # Per image.
    d_forward_flops: int
    d_step_flops: int              # Per image of the minibatch (G forward included).
    g_step_flops: int
    train_flops_per_image: float   # Per real image shown (D step + G step / d_repeats).
    g_activation_bytes: float      # One G forward with a graph, per image.
    d_activation_bytes: float      # One D forward with a graph, per image.
    penalty_graph_bytes: float     # What the WGAN-GP create_graph keeps, per image.
    penalty_backward_bytes: float  # The gradients its double backward holds for the forward graph.
    activation_bytes_per_image: float  # Peak of the D step and the G step.
    fixed_bytes: int               # Weights, gradients, Adam, G_ema, scaled weight copies.

    def memory_bytes(self, minibatch: int | None = None) -> float:
        """Estimated peak memory of a training step at ``minibatch`` (default: the schedule's)."""
        return self.fixed_bytes + (self.minibatch if minibatch is None else minibatch) * self.activation_bytes_per_image

    def max_minibatch(self, free_bytes: float) -> int:
        """The largest minibatch whose estimate fits in ``free_bytes`` (0 when not even one does)."""
        room = free_bytes - self.fixed_bytes
        return max(int(room // self.activation_bytes_per_image), 0) if room > 0 else 0

    @property
    def label(self) -> str:
        return f"{self.resolution}x{self.resolution}" + (" fade" if self.fading else "")


def _penalty_on(spec: Spec) -> bool:
    loss = spec.training.loss
    return loss.name == "wgan_gp" and loss.gp_lambda > 0


def stage_cost(graph: nx.DiGraph, spec: Spec, stage: int, fading: bool, minibatch: int) -> StageCost:
    """Cost of one stage from the graph (``fading``: both the old and the new path run)."""
    g_nodes = active_nodes(graph, "G", stage, fading)
    d_nodes = active_nodes(graph, "D", stage, fading)
    res = graph.graph["resolutions"][stage]
    attrs = {n: graph.nodes[n] for n in g_nodes + d_nodes}
    # The graph's image node has the final resolution; at this stage D sees images of this stage's.
    attrs["D/image"] = {**attrs["D/image"], "out_shape": (graph.graph["image_channels"], res, res)}

    def fwd(n: str) -> int:
        return 2 * op_cost(attrs[n]["op"]).macs(attrs[n])

    def saved(nodes: list[str]) -> float:
        return sum(op_cost(attrs[n]["op"]).saved(attrs[n]) for n in nodes) * FLOAT_BYTES

    g_fwd = sum(fwd(n) for n in g_nodes)
    d_fwd = sum(fwd(n) for n in d_nodes)
    penalty = _penalty_on(spec)
    per_layer = 12 if penalty else 6
    d_step = g_fwd + sum(fwd(n) * (per_layer - 2 * _fed_by_input(graph, n)) for n in d_nodes)
    g_step = sum(fwd(n) * (3 - _fed_by_input(graph, n)) for n in g_nodes) + 2 * d_fwd
    repeats = spec.training.d_repeats
    train = d_step + g_step / repeats

    g_act, d_act = saved(g_nodes), saved(d_nodes)
    # create_graph keeps each weighted layer's output gradient for the double backward.
    # The penalty's norm keeps the input gradient itself (one image). In backward, the double
    # backward of each leaky ReLU sends a (zero) gradient to its input in the forward graph, held
    # until the forward graph's backward reaches it: one more pre-activation per layer.
    pen = pen_back = 0.0
    if penalty:
        for n in d_nodes:
            a = attrs[n]
            if a["kind"] == "input" or op_cost(a["op"]).macs(a) > 0:
                pen += _elems(a["out_shape"]) * FLOAT_BYTES
                pen_back += _elems(a["out_shape"]) * FLOAT_BYTES * a["activation"].startswith("lrelu")
            elif a["op"] == "mbstd":  # its backward keeps the centred input and the output gradient
                pen += 2 * _elems(a["out_shape"]) * FLOAT_BYTES
    d_step_act = (3 if penalty else 2) * d_act + pen + pen_back
    g_step_act = g_act + d_act
    act = max(d_step_act, g_step_act)

    g_params = sum(attrs[n]["params"] for n in g_nodes)
    d_params = sum(attrs[n]["params"] for n in d_nodes)
    all_g = sum(a["params"] for _, a in graph.nodes(data=True) if a["network"] == "G")
    all_d = sum(a["params"] for _, a in graph.nodes(data=True) if a["network"] == "D")
    copies = 0
    if spec.architecture.options.equalized_lr:
        copies = max((3 if penalty else 2) * d_params, g_params + d_params)
    # G, G_ema, D always; gradient + Adam m and v for the active layers; equalized-LR weight copies.
    fixed = FLOAT_BYTES * (2 * all_g + all_d + 3 * (g_params + d_params) + copies)
    return StageCost(
        stage=stage, resolution=res, fading=fading, minibatch=minibatch,
        g_params=g_params, d_params=d_params, g_forward_flops=g_fwd, d_forward_flops=d_fwd,
        d_step_flops=d_step, g_step_flops=g_step, train_flops_per_image=train,
        g_activation_bytes=g_act, d_activation_bytes=d_act, penalty_graph_bytes=pen, penalty_backward_bytes=pen_back,
        activation_bytes_per_image=act, fixed_bytes=fixed,
    )


# --------------------------------------------------------------------------- the schedule

def _pick(spec: Spec, resolution: int, key: str) -> Any:
    # The schedule row of a resolution overrides the defaults key by key (as train/schedule.py reads it).
    for row in spec.training.schedule:
        if row.resolution == resolution and getattr(row, key) is not None:
            return getattr(row, key)
    return getattr(spec.training.defaults, key)


@dataclass(frozen=True)
class PhaseCost:
    """One phase of the schedule: a stage fading in or stabilizing, its images and FLOPs."""

    cost: StageCost
    kimg_start: float
    kimg_end: float

    @property
    def images(self) -> float:
        return (self.kimg_end - self.kimg_start) * 1000.0

    @property
    def flops(self) -> float:
        return self.images * self.cost.train_flops_per_image


@dataclass(frozen=True)
class SpecCost:
    """Everything the cost model says about a spec."""

    name: str
    g_params: int                       # Every stage.
    d_params: int
    stages: list[StageCost]             # Stabilizing at each stage, then fading at each stage above 4x4.
    phases: list[PhaseCost] = field(default_factory=list)

    @property
    def total_flops(self) -> float:
        return sum(p.flops for p in self.phases)

    @property
    def total_images(self) -> float:
        return sum(p.images for p in self.phases)

    def largest(self) -> StageCost:
        """The stage whose training step needs the most memory at its own minibatch."""
        return max(self.stages, key=lambda c: c.memory_bytes())


def schedule_phases(spec: Spec, stages: dict[tuple[int, bool], StageCost]) -> list[PhaseCost]:
    """The phases of the level-of-detail schedule up to total_kimg (the timeline of train/schedule.py:
    stabilize 4x4, then for each higher stage fade in and stabilize; the last stage runs to the end)."""
    res = [r.resolution for r in spec.architecture.generator]
    total = float(spec.training.total_kimg)
    phases, start = [], 0.0
    for stage, r in enumerate(res):
        for fading in ((True, False) if stage > 0 else (False,)):
            if start >= total:
                return phases
            length = float(_pick(spec, r, "fade_kimg" if fading else "stabilize_kimg"))
            end = total if (stage == len(res) - 1 and not fading) else min(start + length, total)
            if end > start:
                phases.append(PhaseCost(stages[(stage, fading)], start, end))
            start = end
    return phases


def spec_cost(graph: nx.DiGraph, spec: Spec) -> SpecCost:
    """The cost of every stage (stabilizing and fading) and of the whole schedule."""
    res = graph.graph["resolutions"]
    table: dict[tuple[int, bool], StageCost] = {}
    for stage, r in enumerate(res):
        mb = int(_pick(spec, r, "minibatch"))
        table[(stage, False)] = stage_cost(graph, spec, stage, False, mb)
        if stage > 0:
            table[(stage, True)] = stage_cost(graph, spec, stage, True, mb)
    ordered = [table[k] for k in sorted(table, key=lambda k: (k[0], not k[1]))]
    g = sum(a["params"] for _, a in graph.nodes(data=True) if a["network"] == "G")
    d = sum(a["params"] for _, a in graph.nodes(data=True) if a["network"] == "D")
    return SpecCost(name=spec.name, g_params=g, d_params=d, stages=ordered, phases=schedule_phases(spec, table))


# --------------------------------------------------------------------------- rates and wall time

@dataclass(frozen=True)
class Rate:
    """A measured training speed, turned into achieved FLOP/s with this cost model."""

    flops_per_s: float
    source: str                         # Where it came from, for the printout.


def rate_from_images(cost: SpecCost, images_per_s: float, resolution: int | None = None,
                     fading: bool = False, source: str = "--rate") -> Rate:
    """Images/s measured at ``resolution`` (default: the final one) as achieved FLOP/s."""
    res = max(c.resolution for c in cost.stages) if resolution is None else resolution
    match = [c for c in cost.stages if c.resolution == res and c.fading == fading]
    if not match:
        match = [c for c in cost.stages if c.resolution == res]
    if not match:
        known = ", ".join(str(c.resolution) for c in cost.stages if not c.fading)
        raise ValueError(f"resolution {res} is not one of this spec's ({known})")
    c = match[0]
    return Rate(images_per_s * c.train_flops_per_image, f"{source}: {images_per_s:g} img/s at {c.label}")


def projected_seconds(phase: PhaseCost, rate: Rate, devices: int = 1) -> float:
    """Wall time of a phase: its FLOPs at the rate's achieved FLOP/s, divided by ``devices`` (linear scaling)."""
    return phase.flops / rate.flops_per_s / devices


# --------------------------------------------------------------------------- printing

def si(x: float, unit: str = "") -> str:
    """1.2 G, 340 M: three significant figures with an SI prefix."""
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def binary(n: float) -> str:
    """Bytes as KiB/MiB/GiB/TiB."""
    for factor, prefix in ((2**60, "EiB"), (2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            v = n / factor
            return f"{v:.3g} {prefix}" if v < 1000 else f"{v:.0f} {prefix}"
    return f"{n:.0f} B"


def duration(seconds: float) -> str:
    """Seconds as 45 s, 12.5 min, 3.2 h or 4.1 d."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


CONVENTION = ("FLOP = 2 x multiply-accumulates of convs and dense layers (torch FlopCounterMode's convention); "
              "train = D step with the WGAN-GP double backward + G step, per real image shown; memory fp32, "
              "peak of the D and G steps at the schedule's minibatch")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def cost_report(cost: SpecCost, rate: Rate | None = None, devices: int = 1) -> str:
    """The ``progan-zoo compile --cost`` tables: per stage, then the schedule (and its wall time)."""
    lines = [f"Cost of {cost.name}: G {cost.g_params:,} parameters ({binary(cost.g_params * FLOAT_BYTES)} fp32), "
             f"D {cost.d_params:,} ({binary(cost.d_params * FLOAT_BYTES)})", CONVENTION, ""]
    header = ("Stage", "G params", "D params", "G fwd FLOP/img", "D fwd FLOP/img", "train FLOP/img",
              "act/img", "minibatch", "fixed", "peak memory") + ((f"per device of {devices}",) if devices > 1 else ())
    rows = []
    for c in cost.stages:
        row = (c.label, si(c.g_params), si(c.d_params), si(c.g_forward_flops), si(c.d_forward_flops),
               si(c.train_flops_per_image), binary(c.activation_bytes_per_image), str(c.minibatch),
               binary(c.fixed_bytes), binary(c.memory_bytes()))
        if devices > 1:
            row += (binary(c.memory_bytes(math.ceil(c.minibatch / devices))),)
        rows.append(row)
    lines += _table(header, rows, right=set(range(1, len(header))))
    lines += ["peak memory: one device holding the whole minibatch"
              + (f"; per device: the minibatch split over {devices} devices (data parallel)" if devices > 1 else "")]
    lines += ["", "Schedule"]
    header = ["Phase", "kimg", "images", "train FLOP"]
    if rate is not None:
        header += ["time, 1 device"] + ([f"time, {devices} devices"] if devices > 1 else [])
    rows = []
    for p in cost.phases:
        row = [p.cost.label, f"{p.kimg_start:g}-{p.kimg_end:g}", si(p.images), si(p.flops)]
        if rate is not None:
            row.append(duration(projected_seconds(p, rate)))
            if devices > 1:
                row.append(duration(projected_seconds(p, rate, devices)))
        rows.append(tuple(row))
    total = ["Total", f"{cost.total_images / 1000:g}", si(cost.total_images), si(cost.total_flops)]
    if rate is not None:
        seconds = cost.total_flops / rate.flops_per_s
        total.append(duration(seconds))
        if devices > 1:
            total.append(duration(seconds / devices))
    table = _table(tuple(header), rows + [tuple(total)], right=set(range(1, len(header))))
    lines += table[:-1] + [table[1], table[-1]]
    if rate is not None:
        lines += ["", f"Rate: {rate.source} = {si(rate.flops_per_s, 'FLOP/s')} achieved, assumed the same at every "
                      "stage (small stages run below it, so their times are lower bounds)"
                      + (f"; {devices} devices assumed to scale linearly" if devices > 1 else "")]
    return "\n".join(lines)


def cost_json(cost: SpecCost, rate: Rate | None = None, devices: int = 1) -> dict[str, Any]:
    """Machine-readable form of ``cost_report``."""
    stages = [{**asdict(c), "label": c.label, "memory_bytes": c.memory_bytes()} for c in cost.stages]
    phases = []
    for p in cost.phases:
        entry = {"stage": p.cost.stage, "resolution": p.cost.resolution, "fading": p.cost.fading,
                 "kimg_start": p.kimg_start, "kimg_end": p.kimg_end, "images": p.images, "flops": p.flops}
        if rate is not None:
            entry["seconds"] = projected_seconds(p, rate)
            entry[f"seconds_{devices}_devices"] = projected_seconds(p, rate, devices)
        phases.append(entry)
    out: dict[str, Any] = {"convention": CONVENTION, "g_params": cost.g_params, "d_params": cost.d_params,
                           "param_bytes": (cost.g_params + cost.d_params) * FLOAT_BYTES,
                           "stages": stages, "schedule": {"phases": phases, "total_images": cost.total_images,
                                                          "total_flops": cost.total_flops}}
    if rate is not None:
        out["rate"] = {"flops_per_s": rate.flops_per_s, "source": rate.source, "devices": devices,
                       "assumption": "achieved FLOP/s constant across stages; devices scale linearly"}
        out["schedule"]["seconds"] = cost.total_flops / rate.flops_per_s
        out["schedule"][f"seconds_{devices}_devices"] = cost.total_flops / rate.flops_per_s / devices
    return out


def rate_from_file(cost: SpecCost, path: str) -> Rate:
    """A rate from a benchmark's ``--json`` output (its achieved GFLOP/s, same FLOP convention) or a
    run's ``log.jsonl`` (the median images/s of the ticks at the last record's resolution and phase)."""
    import json
    from pathlib import Path

    from progan_zoo.errors import UsageError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the rate file ({exc.__class__.__name__}) "
                         "(hint: give benchmarks/bench_train.py --json output or a run's log.jsonl)") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}:{exc.colno}: not JSON: {exc.msg} (hint: one JSON object per line, "
                             "as bench_train.py --json and log.jsonl write them)") from None
        if isinstance(rec, dict) and isinstance(rec.get("images_per_s"), (int, float)) and rec["images_per_s"] > 0:
            records.append(rec)
    if not records:
        raise UsageError(f"{path}: no record with a positive 'images_per_s' (hint: give benchmarks/bench_train.py "
                         "--json output or a run's log.jsonl)")
    last = records[-1]
    if isinstance(last.get("gflops"), (int, float)) and last["gflops"] > 0:
        res = last.get("resolution", "?")
        return Rate(last["gflops"] * 1e9, f"{path}: {last['gflops']:.4g} GFLOP/s achieved by "
                                          f"{last.get('variant', 'the benchmark')} at {res}x{res}")
    res = last.get("resolution")
    fading = float(last.get("alpha", 1.0)) < 1.0
    same = sorted(r["images_per_s"] for r in records if r.get("resolution") == res
                  and (float(r.get("alpha", 1.0)) < 1.0) == fading)
    median = same[len(same) // 2]
    if not isinstance(res, int) or res not in {c.resolution for c in cost.stages}:
        raise UsageError(f"{path}: the last record's resolution {res!r} is not one of this spec's "
                         "(hint: give the log of a run of this spec, or --rate IMG_PER_S --rate-res R)")
    return rate_from_images(cost, median, res, fading, source=f"{path}: median of {len(same)} tick(s)")


# --------------------------------------------------------------------------- the cost section of docs/spec.md

DOCS_BEGIN = "<!-- BEGIN COST: generated by `python -m progan_zoo.compiler.cost --docs`; do not edit by hand -->"
DOCS_END = "<!-- END COST -->"

# Achieved rates measured with benchmarks/bench_train.py (FlopCounterMode FLOPs, the convention above),
# as docs/training.md reports them; each projection assumes the rate holds at every stage.
DOC_RATES = (
    ("CPU, 2 cores", 180e9, "the development VM at a quiet moment, bench 32x32 minibatch 32, docs/training.md"),
    ("1 H100", 24_081e9, "fp32, bench 32x32 minibatch 256, docs/training.md"),
    ("8 H100", 8 * 24_081e9, "the same, 8 devices assumed to scale linearly"),
)


def docs_markdown(spec_paths: list[str] | None = None) -> str:
    """The generated cost section: a table per shipped spec and its schedule's projected time."""
    from pathlib import Path

    from . import compile_spec

    root = Path(__file__).resolve().parents[1]
    paths = spec_paths or sorted(str(p.relative_to(root)) for p in (root / "specs").glob("*.yaml"))
    lines = ["### Cost of the shipped specs", "",
             "Generated from the graphs by `progan-zoo compile SPEC --cost` (conventions above). Peak memory is",
             "one device holding the stage's whole global minibatch in fp32; split over N devices, each",
             "holds `fixed + minibatch / N x act/img`.", "",
             "Projected schedule time uses these achieved rates (measured, `benchmarks/bench_train.py`):", ""]
    lines += [f"- {name}: {si(rate, 'FLOP/s')} ({source})" for name, rate, source in DOC_RATES]
    lines.append("")
    for path in paths:
        c = compile_spec(root / path, until="graph")
        cost = spec_cost(c.graph, c.spec)
        lines += [f"#### `{path}`", "",
                  f"G {cost.g_params:,} parameters, D {cost.d_params:,} ({binary((cost.g_params + cost.d_params) * FLOAT_BYTES)} "
                  "of fp32 weights together).", "",
                  "| stage | G params | D params | G fwd FLOP/img | D fwd FLOP/img | train FLOP/img | act/img | "
                  "minibatch | fixed | peak memory |", "|---|---|---|---|---|---|---|---|---|---|"]
        for c in cost.stages:
            lines.append(f"| {c.label} | {si(c.g_params)} | {si(c.d_params)} | {si(c.g_forward_flops)} | "
                         f"{si(c.d_forward_flops)} | {si(c.train_flops_per_image)} | {binary(c.activation_bytes_per_image)} | "
                         f"{c.minibatch} | {binary(c.fixed_bytes)} | {binary(c.memory_bytes())} |")
        times = ", ".join(f"{name} {duration(cost.total_flops / rate)}" for name, rate, _ in DOC_RATES)
        lines += ["", f"Schedule: {si(cost.total_images)} images, {si(cost.total_flops, 'FLOP')}; projected: {times}.", ""]
    return "\n".join(lines)


def _splice_docs(text: str, body: str) -> str:
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise ValueError(f"docs/spec.md lacks the cost markers; add the lines\n{DOCS_BEGIN}\n{DOCS_END}")
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    return f"{head}{DOCS_BEGIN}\n{body}{DOCS_END}{tail}"


def _docs_path():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "docs" / "spec.md"


def check_docs() -> bool:
    """True when the committed cost section of docs/spec.md equals the generated one."""
    path = _docs_path()
    if not path.exists():
        return False
    text = path.read_text()
    try:
        return _splice_docs(text, docs_markdown()) == text
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    """``python -m progan_zoo.compiler.cost --docs``: rewrite (or ``--check``) the cost section of docs/spec.md."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m progan_zoo.compiler.cost", description=main.__doc__)
    p.add_argument("--docs", action="store_true", help="rewrite the generated cost section of docs/spec.md")
    p.add_argument("--check", action="store_true", help="exit 1 if it is stale")
    args = p.parse_args(argv)
    if args.check:
        if not check_docs():
            print(f"stale: {_docs_path()} (run: python -m progan_zoo.compiler.cost --docs)", file=sys.stderr)
            return 1
        return 0
    if args.docs:
        path = _docs_path()
        path.write_text(_splice_docs(path.read_text(), docs_markdown()))
        print(f"wrote the cost section of {path}")
        return 0
    sys.stdout.write(docs_markdown())
    return 0


if __name__ == "__main__":
    import sys

    # Run the package's copy of this module, not a second copy under the name __main__.
    from progan_zoo.compiler.cost import main as _main
    sys.exit(_main())
