"""Data parallelism with torch.distributed, without the DDP wrapper.

Why not ``DistributedDataParallel``: each D step runs D three times (reals, fakes, and the
gradient-penalty mix) and the penalty needs a double backward (``create_graph=True``), which DDP's
reducer hooks do not support reliably; and the set of parameters that get gradients changes at
every growth and fade step, which DDP would need ``find_unused_parameters`` or a rebuild for. So,
like stylegan2-ada-pytorch, every rank runs the unwrapped modules on its share of the global
minibatch, and after each backward the gradients are averaged with one flat ``all_reduce``.
Every rank sees the same graph (same stage, same fade), so the same parameters have gradients
everywhere, and the result equals one process with the whole minibatch up to float rounding.

Launch: ``torchrun --nproc_per_node=N -m progan_zoo train SPEC``; torchrun sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Backend: NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as tdist

from progan_zoo.errors import UserError


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str) -> torch.device:
    """``auto`` (cuda if available), ``cpu`` or ``cuda``; a missing GPU is a UserError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available (hint: use --device cpu)")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"--device {name}: unknown (hint: cpu, cuda or auto)")
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group that torchrun describes in the environment (or run alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = pick_device(device)
    if world <= 1:
        return DistInfo(device=dev)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                 **({"device_id": dev} if dev.type == "cuda" else {}))
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)


def all_reduce_grads(params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
    """Average the gradients over ranks with one flat all_reduce (parameters without a gradient are skipped
    on every rank alike, since every rank runs the same stage and fade)."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat)
    flat.div_(info.world)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        tdist.all_reduce(t)
        t.div_(info.world)
    return t


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Make every rank start from rank 0's weights."""
    if info.enabled:
        for t in list(module.parameters()) + list(module.buffers()):
            tdist.broadcast(t.data, src=0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        tdist.barrier()


def shutdown(info: DistInfo, finished: bool = False) -> None:
    """Leave the process group. ``finished``: every rank ended the run normally, so they first meet at a
    barrier: a gloo rank that tears down while another still finishes its last checkpoint was seen to abort
    at exit ("terminate called without an active exception") after a complete run. After a failure there is
    no barrier, which could wait for a rank that is gone."""
    if info.enabled and tdist.is_initialized():
        if finished:
            tdist.barrier()
        tdist.destroy_process_group()
