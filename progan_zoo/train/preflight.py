"""Before training: will the largest stage fit in the device's free memory?

The estimate is the compiler's cost model (``progan_zoo.compiler.cost``), read from the layer graph
before any module is built or moved, so a spec that cannot fit is refused in a second, not after
hours of training when the schedule reaches its largest stage. Each rank holds the global minibatch
divided by the number of ranks (data parallel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from progan_zoo.compiler import Spec
from progan_zoo.compiler.cost import StageCost, spec_cost
from progan_zoo.compiler.cost_report import binary
from progan_zoo.errors import UserError

# The model counts tensors autograd keeps; on CUDA the allocator's peak also holds cuDNN workspaces
# (benchmark mode) and the caching allocator's rounding. Measured on an H100 with
# benchmarks/bench_train.py (32x32, minibatch 256, 128 maps, fp32): 5,541 MiB max_memory_allocated
# against the model's 3,942 MiB, so a CUDA estimate is taken 1.4x larger before comparing.
CUDA_MARGIN = 1.4


def available_cpu_bytes(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Memory a new process can use without swapping: Linux's MemAvailable, else psutil if installed, else None."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB (KiB)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional: not a dependency of progan-zoo
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def free_memory(device: "str | object") -> tuple[int | None, str]:
    """(free bytes or None when unknown, what was asked) for a torch device or its name."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free), f"{dev} free memory (torch.cuda.mem_get_info)"
    return available_cpu_bytes(), "available RAM (/proc/meminfo MemAvailable)"


@dataclass(frozen=True)
class Preflight:
    """The largest stage's estimate against the free memory of one device."""

    stage: StageCost          # The stage that needs the most memory per device.
    minibatch: int            # Its minibatch per device.
    needed_bytes: float
    free_bytes: int | None
    where: str                # What ``free_bytes`` is, for the message.
    fits_minibatch: int       # Largest per-device minibatch that fits (0: none; -1: free memory unknown).
    margin: float = 1.0       # Factor on the estimate before comparing (CUDA_MARGIN on CUDA).

    @property
    def fits(self) -> bool:
        return self.free_bytes is None or self.needed_bytes * self.margin <= self.free_bytes

    def message(self) -> str:
        s = self.stage
        need = (f"the {s.label} stage needs about {binary(self.needed_bytes)} per device "
                f"({binary(s.fixed_bytes)} weights, gradients and Adam state + minibatch {self.minibatch} x "
                f"{binary(s.activation_bytes_per_image)} of activations per image"
                + (f", x{self.margin:g} for cuDNN workspaces" if self.margin != 1.0 else "") + ")")
        if self.free_bytes is None:
            return f"{need}; the free memory of this device is unknown"
        return f"{need}; {self.where}: {binary(self.free_bytes)}"


def preflight(graph: nx.DiGraph, spec: Spec, free_bytes: int | None, where: str = "free memory",
              world: int = 1, until_kimg: float | None = None, margin: float = 1.0) -> Preflight:
    """Compare the stage with the largest per-device estimate, among those the schedule reaches
    before ``until_kimg`` (default: all), against ``free_bytes`` (pure)."""
    cost = spec_cost(graph, spec)
    reached = [p.cost for p in cost.phases if until_kimg is None or p.kimg_start < until_kimg] or cost.stages[:1]

    def per_device(c: StageCost) -> int:
        return max(math.ceil(c.minibatch / world), 1)

    worst = max(reached, key=lambda c: c.memory_bytes(per_device(c)))
    mb = per_device(worst)
    fits_mb = -1 if free_bytes is None else worst.max_minibatch(free_bytes / margin)
    return Preflight(worst, mb, worst.memory_bytes(mb), free_bytes, where, fits_mb, margin)


def check_memory(graph: nx.DiGraph, spec: Spec, device: "str | object", world: int = 1,
                 until_kimg: float | None = None) -> Preflight:
    """Raise a UserError saying plainly that the spec will not fit, and which minibatch would; else
    return the Preflight (its ``message()`` is worth a log line). Call before building the networks.

    On the CPU every rank is taken to share this machine's RAM (torchrun's CPU ranks usually do),
    so the free memory is divided among them."""
    free, where = free_memory(device)
    import torch

    cuda = torch.device(device).type == "cuda"
    if free is not None and not cuda and world > 1:
        free, where = free // world, f"{where}, shared by {world} ranks"
    result = preflight(graph, spec, free, where, world, until_kimg, margin=CUDA_MARGIN if cuda else 1.0)
    if result.fits:
        return result
    s = result.stage
    group = spec.architecture.options.mbstd_group_size
    suggest = result.fits_minibatch
    if group > 1 and suggest > group:
        suggest -= suggest % group  # a multiple of the minibatch-stddev group (validation requires it)
    if suggest >= 1:
        hint = (f"a global minibatch of {suggest * world} at {s.resolution}x{s.resolution} would fit "
                f"({suggest} per device): set it in the spec's training.schedule row for {s.resolution}, "
                "or train on more devices")
    else:
        hint = ("not even one image fits: use narrower layers or a device with more memory "
                f"(the fixed part alone is {binary(s.fixed_bytes)})")
    raise UserError(f"this spec will not fit: {result.message()} (hint: {hint})")
