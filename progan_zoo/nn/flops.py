"""FLOPs of a call as torch counts them (``torch.utils.flop_counter.FlopCounterMode``): the measure
the cost model (compiler/cost.py) is held to and the benchmarks report."""

from __future__ import annotations

from typing import Callable

from torch.utils.flop_counter import FlopCounterMode


class _NoModuleTracking:
    """FlopCounterMode's per-module tracker cannot follow autograd.grad on a leaf (the WGAN-GP
    penalty's input); count everything under one 'Global' entry instead."""

    parents = {"Global"}
    is_bw = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of convolutions and matmuls run by ``fn()`` (forward, backward, double backward), by
    torch's convention: 2 x multiply-accumulates."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModuleTracking()
    with counter:
        fn()
    return counter.get_total_flops()
