"""Static training steps, captured in CUDA graphs (``progan-zoo train --cuda-graphs``).

At small resolutions and minibatches a training step is launch-bound on a GPU: the D step with the
WGAN-GP penalty's double backward, the EMA update and the G step issue hundreds of small kernels, and
the host cannot issue them as fast as the GPU runs them. Within one phase of the schedule (a
resolution, fading or stable, a minibatch) every shape is fixed, so each step can be recorded once as
a CUDA graph and replayed with one launch (PyTorch docs, "CUDA Graphs", whole-network capture).

What changes from step to step lives in static tensors that are copied into before a replay:

* the real minibatch, the latents and the penalty's mixing factors (drawn on the host from the run's
  generator, exactly as the default loop draws them, so no random number is drawn inside a graph);
* the fade weight alpha, a 0-dim tensor (a Python float would be baked into the graph);
* Adam's per-step factors. ``torch.optim.Adam(capturable=True)`` keeps its step count on the device, but
  it refuses the CPU and rounds differently from the default Adam. Instead the update here works on the
  default Adam's own state (``exp_avg``, ``exp_avg_sq``, ``step``, so checkpoints are the same either
  way) with ``-lr / (1 - beta1^t)`` and ``sqrt(1 - beta2^t)`` computed on the host in double precision, as
  ``torch.optim.Adam`` computes them, and copied in as float32: the learning-rate ramp-up and the step
  count reach the graph through this buffer. On the CPU the update is bitwise the one ``torch.optim.Adam``
  makes (tests check it).

A graph is captured per step kind: the D step (with its EMA update) with the penalty, the D step without
it (``--lazy-penalty``), and the G step. They are re-captured when the phase changes (resolution, fade
or stable, minibatch) and when the optimizers' state is replaced (the official Adam reset on growth, a
resume). Before capture each kind runs ``warmup`` ordinary steps on a side stream (the docs' advice;
cuDNN autotuning and Adam's state allocation happen there); those are real training steps.

Without capture (the CPU, or ``capture=False``) the same object runs the same code eagerly; the tests
use that path to show that the static step trains exactly as the default loop does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .schedule import Phase
from .steps import d_frozen, d_loss, ema_update, g_loss


@dataclass
class _Kind:
    """One step kind of one phase: its graph once captured, and what the graph reads and writes."""

    warm: int = 0                                      # Eager steps run so far.
    graph: "torch.cuda.CUDAGraph | None" = None
    keys: list[str] = field(default_factory=list)      # Loss statistics, in the order of ``out``.
    out: torch.Tensor | None = None                    # [K] statistics written by each replay.
    groups: list[list[torch.nn.Parameter]] = field(default_factory=list)   # Active parameters by Adam step count.
    state: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # Adam moments the graph updates.
    scalars: torch.Tensor | None = None                # [2 * groups]: (-step size, sqrt(bias correction 2)) per group.


class StaticSteps:
    """The D step (with the G_ema update) and the G step of ``steps.Nets`` on static buffers.

    ``capture``: record each step kind in a CUDA graph after ``warmup`` eager steps (CUDA only);
    without it every step runs eagerly through the same code (the CPU test path).
    """

    def __init__(self, nets, capture: bool, warmup: int = 3) -> None:
        self.nets, self.capture, self.warmup = nets, capture, max(int(warmup), 1)
        self.device = nets.dist.device
        if capture and self.device.type != "cuda":
            raise ValueError("CUDA graph capture needs a CUDA device")
        self.foreach = self.device.type == "cuda"   # The default Adam's choice (optim.make_optimizer).
        self.key: tuple | None = None
        self.kinds: dict[tuple, _Kind] = {}
        self.captures = 0                            # Graphs captured so far (tests, logs).
        self.side = torch.cuda.Stream(self.device) if capture else None

    # -- buffers ----------------------------------------------------------------------------------

    def _enter(self, phase: Phase, local: int) -> None:
        """New static buffers (and no graphs) when the phase's shapes or its fade change."""
        key = (phase.stage, phase.fading, local)
        if key == self.key:
            return
        self.key, self.kinds = key, {}   # Dropping the graphs frees their memory pools.
        G, n = self.nets.G, self.nets
        res, dev = phase.resolution, self.device
        self.z = torch.zeros(local, G.z_dim, device=dev)                                  # [NZ]
        self.mix = torch.zeros(local, device=dev)                                         # [N]
        self.reals = n.fmt(torch.zeros(local, G.image_channels, res, res, device=dev))    # [NCHW]
        self.alpha = torch.ones((), device=dev)                                          # fade weight
        self.stage, self.fading = phase.stage, phase.fading
        self.norm_scale = n.norm_scale(phase)   # depends on the stage only

    def _alpha(self):
        # Stable phases pass the float 1.0, so G and D skip the fade branch exactly as the default loop does.
        return self.alpha if self.fading else 1.0

    def _put(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        """Copy into a static buffer without stalling the host: a CPU source is pinned first (a copy from
        pageable memory would wait for the GPU to finish the queued steps)."""
        if self.device.type == "cuda" and src.device.type == "cpu":
            src = src.pin_memory()   # the caching host allocator keeps it until the copy is done
        dst.copy_(src, non_blocking=True)

    def _copy(self, dst: torch.Tensor, values: list[float]) -> None:
        self._put(dst, torch.tensor(values, dtype=torch.float32).view(dst.shape))

    # -- Adam on the default optimizer's state ---------------------------------------------------

    def _host_scalars(self, opt: torch.optim.Optimizer, active: list) -> list[float]:
        """Advance Adam's step counts of ``active`` and return [-step size, sqrt(bc2)] per group,
        computed like ``torch.optim.Adam`` (Python doubles; the kernels round them to float32)."""
        group = opt.param_groups[0]
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        out: list[float] = []
        for params in active:
            # One host call for the group's step tensors (they stay on the CPU, as the default Adam keeps
            # them); a group's members share the count (_grouped), and advance together.
            steps = [opt.state[p]["step"] for p in params]
            torch._foreach_add_(steps, 1.0)
            t = float(steps[0].item())
            out += [-(lr / (1 - beta1 ** t)), (1 - beta2 ** t) ** 0.5]
        return out

    @staticmethod
    def _ensure_state(opt: torch.optim.Optimizer, params: list) -> None:
        """Adam's lazily created state, as ``torch.optim.Adam`` creates it on a parameter's first step."""
        for p in params:
            if p not in opt.state or not opt.state[p]:
                opt.state[p] = {"step": torch.tensor(0.0, dtype=torch.float32),
                                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}

    @staticmethod
    def _grouped(opt: torch.optim.Optimizer, params: list) -> list[list]:
        """Parameters grouped by Adam step count (one group unless some skipped earlier steps)."""
        by_t: dict[float, list] = {}
        for p in params:
            by_t.setdefault(float(opt.state[p]["step"].item()), []).append(p)
        return list(by_t.values())

    @torch.no_grad()
    def _adam(self, opt: torch.optim.Optimizer, kind: _Kind) -> None:
        """torch.optim.Adam's update (no weight decay, amsgrad or maximize), with the per-step factors
        read from ``kind.scalars``. The per-tensor form is bitwise the default single-tensor Adam."""
        group = opt.param_groups[0]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        for gi, params in enumerate(kind.groups):
            neg_step, bc2_sqrt = kind.scalars[2 * gi], kind.scalars[2 * gi + 1]
            grads = [p.grad for p in params]
            ms = [opt.state[p]["exp_avg"] for p in params]
            vs = [opt.state[p]["exp_avg_sq"] for p in params]
            if self.foreach:
                torch._foreach_lerp_(ms, grads, 1 - beta1)
                torch._foreach_mul_(vs, beta2)
                torch._foreach_addcmul_(vs, grads, grads, 1 - beta2)
                den = torch._foreach_sqrt(vs)
                torch._foreach_div_(den, bc2_sqrt)
                torch._foreach_add_(den, eps)
                torch._foreach_addcdiv_(params, torch._foreach_mul(ms, neg_step), den)
            else:
                for p, g, m, v in zip(params, grads, ms, vs):
                    m.lerp_(g, 1 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    den = (v.sqrt() / bc2_sqrt).add_(eps)
                    p.addcdiv_(m * neg_step, den)   # = addcdiv_(m, den, value=-step size), bit for bit

    # -- the step bodies (eager, or recorded into a graph) -----------------------------------------

    def _d_body(self, kind: _Kind, gp_weight: float, prepare) -> torch.Tensor:
        n = self.nets
        loss, stats = d_loss(n, self.reals, self.z, self.mix if n.loss.needs_mix else None, self.stage,
                             self._alpha(), self.norm_scale, gp_weight, cache=not self.capture)
        loss.backward()
        prepare([p for p in n.D.parameters() if p.grad is not None])
        self._adam(n.opt_D, kind)
        ema_update(n.G_ema, n.G, n.ema_decay)   # the official Gs update follows every D step
        kind.keys = list(stats)
        return torch.stack([stats[k].float() for k in kind.keys])

    def _g_body(self, kind: _Kind, gp_weight: float, prepare) -> torch.Tensor:
        n = self.nets
        with d_frozen(n):
            loss, stats = g_loss(n, self.z, self.stage, self._alpha(), cache=not self.capture)
            loss.backward()
        prepare([p for p in n.G.parameters() if p.grad is not None])
        self._adam(n.opt_G, kind)
        kind.keys = list(stats)
        return torch.stack([stats[k].float() for k in kind.keys])

    # -- running one step --------------------------------------------------------------------------

    def _run(self, name: str, body, opt: torch.optim.Optimizer, phase: Phase, gp_weight: float) -> dict:
        kind = self.kinds.setdefault((name, gp_weight), _Kind())
        if kind.graph is not None and not self._still_valid(kind, opt):
            self.kinds[(name, gp_weight)] = kind = _Kind()
        if self.fading:
            self._copy(self.alpha, [phase.alpha])
        if kind.graph is not None:
            self._copy(kind.scalars, self._host_scalars(opt, kind.groups))
            kind.graph.replay()
            res = kind.out.clone()
            return dict(zip(kind.keys, res))

        # Eager: the same body; Adam's factors are filled after the backward shows which parameters train.
        def prepare(active: list) -> None:
            self._ensure_state(opt, active)
            kind.groups = self._grouped(opt, active)
            if kind.scalars is None or kind.scalars.numel() != 2 * len(kind.groups):
                kind.scalars = torch.zeros(2 * len(kind.groups), device=self.device)
            self._copy(kind.scalars, self._host_scalars(opt, kind.groups))

        opt.zero_grad(set_to_none=True)
        if self.side is not None:
            # Eager warm-up steps on a side stream (PyTorch docs, CUDA graphs), then capture.
            main = torch.cuda.current_stream(self.device)
            self.side.wait_stream(main)
            with torch.cuda.stream(self.side):
                res = body(kind, gp_weight, prepare).clone()
            main.wait_stream(self.side)
            res.record_stream(main)
        else:
            res = body(kind, gp_weight, prepare)
        kind.warm += 1
        stats = dict(zip(kind.keys, res))
        if self.capture and kind.warm >= self.warmup:
            self._capture(kind, body, opt, gp_weight)
        return stats

    def _capture(self, kind: _Kind, body, opt: torch.optim.Optimizer, gp_weight: float) -> None:
        """Record ``body`` (nothing runs: the next step replays it). Gradients start unset so that the
        backward allocates them in the graph's own memory pool (docs: zero_grad(set_to_none=True))."""
        opt.zero_grad(set_to_none=True)
        kind.graph, kind.out = self._record(lambda: body(kind, gp_weight, lambda active: None), opt)
        kind.state = [(opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]) for g in kind.groups for p in g]
        self.captures += 1

    def _record(self, body, opt: torch.optim.Optimizer):
        """(graph, output) of ``body`` recorded in a CUDA graph. Tests on the CPU replace this with a
        stand-in whose ``replay()`` re-runs the body, to check the replay bookkeeping around it."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = body()
        return graph, out

    @staticmethod
    def _still_valid(kind: _Kind, opt: torch.optim.Optimizer) -> bool:
        """False once the optimizer state the graph updates was replaced (Adam reset, a resume)."""
        params = [p for g in kind.groups for p in g]
        for p, (m, v) in zip(params, kind.state):
            st = opt.state.get(p)
            if not st or st.get("exp_avg") is not m or st.get("exp_avg_sq") is not v:
                return False
        return True

    # -- the trainer's two calls --------------------------------------------------------------------

    def d_step(self, reals: torch.Tensor, z: torch.Tensor, mix: torch.Tensor | None, phase: Phase,
               gp_weight: float = 1.0) -> dict:
        """``steps.d_step`` followed by ``steps.ema_update``, on static buffers. The inputs may be on
        the CPU or the device (``steps.draw(..., on_device=False)`` keeps the latents on the CPU)."""
        self._enter(phase, z.shape[0])
        self._put(self.reals, reals)
        self._put(self.z, z)
        if mix is not None:
            self._put(self.mix, mix)
        return self._run("D", self._d_body, self.nets.opt_D, phase, float(gp_weight))

    def g_step(self, z: torch.Tensor, phase: Phase) -> dict:
        """``steps.g_step`` on static buffers."""
        self._enter(phase, z.shape[0])
        self._put(self.z, z)
        return self._run("G", self._g_body, self.nets.opt_G, phase, 0.0)
