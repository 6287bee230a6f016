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

Each layer op carries its cost facts on its registry entry (``ops.Op.cost``, an ``OpCost``); a layer
op without one is an error that says so. The nodes the graph adds itself are costed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .ops import OPS, OpCost, dense_macs, elems, layer_saved
from .schema import Spec

FLOAT_BYTES = 4  # fp32: the default, paper-faithful precision.


# --------------------------------------------------------------------------- per-node costs
# A layer op's cost facts live on its registry entry (``ops.Op.cost``); the few nodes the graph makes
# itself (inputs, D's output layer, toRGB / fromRGB, the fade blend) are costed here.

GRAPH_NODE_COSTS: dict[str, OpCost] = {
    "conv1x1": OPS.get("conv1x1").cost,                  # toRGB and fromRGB are 1x1 convs.
    "dense": OpCost(dense_macs, layer_saved),            # D's output layer.
    # The fade blend: D's blended features are kept by the next conv; G's blend is the image.
    "lerp": OpCost(lambda a: 0, lambda a: float(elems(a["out_shape"])) if a["network"] == "D" else 0.0),
    # Inputs: the normalized latent keeps z and its output; D's image is kept by fromRGB.
    "latent": OpCost(lambda a: 0, lambda a: float(a["out_channels"] * (2 if a["activation"] == "pixnorm" else 1))),
    "image": OpCost(lambda a: 0, lambda a: float(elems(a["out_shape"]))),
    "upsample": OPS.get("upsample").cost,                # G's fade_up.
    "downsample": OPS.get("downsample").cost,            # D's fade_down.
    # Conditioning: the one-hot labels and their concatenation to the latent (kept for the pixel norm
    # like the latent), and the score / label-logit columns of D's output (views, nothing kept).
    "labels": OpCost(lambda a: 0, lambda a: float(a["out_channels"])),
    "concat": OpCost(lambda a: 0, lambda a: float(a["out_channels"] * (2 if a["activation"] == "pixnorm" else 1))),
    "slice": OpCost(lambda a: 0, lambda a: 0.0),
}


class CostModelError(KeyError):
    """A graph node whose op has no cost (a new op that forgot its ``cost``)."""

    def __str__(self) -> str:
        return str(self.args[0])


def op_cost(op: str) -> OpCost:
    """The cost of a graph node's ``op``: its registry entry's, or the graph's own node table's."""
    cost = GRAPH_NODE_COSTS.get(op) or (OPS.get(op).cost if op in OPS.names() else None)
    if cost is None:
        known = sorted({*GRAPH_NODE_COSTS, *(n for n in OPS.names() if OPS.get(n).cost is not None)})
        raise CostModelError(f"the cost model has no entry for op '{op}': give its Op a cost (an OpCost) in "
                             f"compiler/ops.py (known: {', '.join(known)})") from None
    return cost


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
                pen += elems(a["out_shape"]) * FLOAT_BYTES
                pen_back += elems(a["out_shape"]) * FLOAT_BYTES * a["activation"].startswith("lrelu")
            elif a["op"] == "mbstd":  # its backward keeps the centred input and the output gradient
                pen += 2 * elems(a["out_shape"]) * FLOAT_BYTES
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
    if not spec.training.progressive:  # one phase: the final stage from the first image
        return [PhaseCost(stages[(len(res) - 1, False)], 0.0, total)]
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


if __name__ == "__main__":
    import sys

    # `python -m progan_zoo.compiler.cost --docs` (as docs/spec.md says): the reports module's command.
    from progan_zoo.compiler.cost_report import main as _main
    sys.exit(_main())
