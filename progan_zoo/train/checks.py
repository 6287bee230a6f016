"""Checks of a training run's settings, made before anything is built or written: the minibatches
against the world size and minibatch-stddev groups, the opt-in precision flags, and CUDA graphs; and,
once the data is open, a conditional spec's classes against the data's labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from progan_zoo.errors import UsageError, UserError

if TYPE_CHECKING:
    from .schedule import Schedule
    from .config import TrainConfig


def check_minibatches(spec, sched: "Schedule", world: int) -> None:
    """Every resolution's global minibatch splits evenly over ranks and into minibatch-stddev groups."""
    g = spec.architecture.options.mbstd_group_size
    for res, mb in zip(sched.resolutions, sched.minibatch):
        where = f"training minibatch at {res}x{res} ({mb})"
        if mb % world:
            raise UserError(f"{where} does not split over {world} ranks (hint: make every minibatch a multiple of the world size)")
        local = mb // world
        if g > 1 and local % min(g, local):
            raise UserError(f"{where}: each rank's {local} images do not split into minibatch-stddev groups of {g} "
                            "(hint: make minibatch / world size a multiple of architecture.options.mbstd_group_size)")
        if g > 1 and world > 1 and local < g:
            raise UserError(f"{where}: each rank gets {local} images, fewer than the minibatch-stddev group of {g}, "
                            "so the groups would differ from one process (hint: use fewer ranks or larger minibatches)")


def check_precision(cfg: "TrainConfig", device: torch.device) -> None:
    """The opt-in speed flags; the default is paper-faithful fp32."""
    if cfg.amp not in ("none", "bf16"):
        raise UsageError(f"--amp {cfg.amp}: unknown (hint: none or bf16)")
    if cfg.amp_penalty and cfg.amp != "bf16":
        raise UsageError("--amp-penalty only applies with --amp bf16 (hint: add --amp bf16 or drop --amp-penalty)")
    if cfg.lazy_penalty < 1:
        raise UsageError(f"--lazy-penalty {cfg.lazy_penalty}: must be >= 1 (1: the penalty every D step, as the paper)")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.backends.cudnn.benchmark = not cfg.deterministic
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)


def check_graphs(cfg: "TrainConfig", device: torch.device, world: int) -> None:
    """``--cuda-graphs``: a CUDA device, one process, and the step kinds graphs.py captures."""
    if not (cfg.cuda_graphs or cfg.static_steps):
        return
    if cfg.cuda_graphs and device.type != "cuda":
        raise UsageError(f"--cuda-graphs needs a CUDA device, and this run's device is {device.type} "
                         "(hint: drop --cuda-graphs, or train on a GPU with --device cuda)")
    if world > 1:
        raise UsageError(f"--cuda-graphs is not supported with {world} ranks yet: the gradient all-reduce is not "
                         "captured (hint: drop --cuda-graphs for multi-GPU runs)")
    if cfg.shared_fakes:
        raise UsageError("--cuda-graphs cannot be combined with --shared-fakes: the shared G forward's graph would "
                         "span two captured steps (hint: drop one of the two flags)")


def check_labels(spec, images, source, cfg: "TrainConfig") -> torch.Tensor | None:
    """The data set's class indices [N] for a conditional spec (None for an unconditional one)."""
    cond = spec.conditioning
    if cond is None:
        return None
    if cfg.cuda_graphs or cfg.static_steps:
        raise UsageError("--cuda-graphs does not support conditional specs yet (hint: train without it)")
    if images.labels is None:
        raise UsageError(f"{source}: has no class labels, but the spec is conditional (hint: make a cache with "
                         "`progan-zoo dataset SRC OUT --labels folders|builtin|FILE`, or train from class folders)")
    got = images.labels
    if got.label_size != cond.label_size:
        raise UsageError(f"{source}: has {got.label_size} classes, the spec's conditioning.label_size is "
                         f"{cond.label_size} (hint: make them equal)")
    if cond.class_names is not None and list(cond.class_names) != got.class_names:
        raise UsageError(f"{source}: its classes are {', '.join(got.class_names)}, the spec's class_names "
                         f"{', '.join(cond.class_names)} (hint: list the data's classes in its order)")
    return torch.from_numpy(np.array(got.indices))
