"""Adam as the official training drives it: made from the spec, reset when the level of detail
crosses an integer, and given each phase's learning rate.

The official ``train.py`` resets both optimizers' moments (``reset_opt_for_new_lod``) when the floor
or ceiling of the level of detail changes, that is when a fade starts or ends, and sets the learning
rate of the schedule once per group of minibatches. The loop (trainer.py) calls these; the CUDA-graph
steps (graphs.py) keep the same Adam settings.
"""

from __future__ import annotations

import math

import torch


def make_optimizer(module: torch.nn.Module, spec, device: torch.device) -> torch.optim.Adam:
    """Adam over ``module``'s parameters with the spec's betas, eps and first learning rate."""
    o = spec.training.optimizer
    return torch.optim.Adam(module.parameters(), lr=spec.training.defaults.learning_rate, betas=(o.beta1, o.beta2),
                            eps=o.eps, foreach=device.type == "cuda")


def lod_crossed(prev: float | None, lod: float) -> bool:
    """The official ``reset_opt_for_new_lod`` trigger: floor or ceil of the level of detail changed
    (a fade starts, or a fade ends)."""
    return prev is not None and (math.floor(prev) != math.floor(lod) or math.ceil(prev) != math.ceil(lod))


def reset_optimizers(*opts: torch.optim.Optimizer) -> None:
    """Official ``reset_optimizer_state``: Adam's moments and step counts back to zero."""
    for opt in opts:
        opt.state.clear()


def set_learning_rate(lr: float, *opts: torch.optim.Optimizer) -> None:
    """The phase's learning rate on every parameter group of ``opts``."""
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = lr
