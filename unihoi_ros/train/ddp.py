"""Data-parallel plumbing for ``torchrun`` (DDP): process group, rank helpers, reductions.

Launched by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT`` in the environment) the trainer joins a process group: NCCL on CUDA
devices, gloo on the CPU. Without those variables everything degrades to one process.
On a shared machine keep the rendezvous on loopback: ``MASTER_ADDR=127.0.0.1`` and
``GLOO_SOCKET_IFNAME=lo``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, its ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the one that logs and writes files)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the ``torchrun`` process group if there is one; pick this process's device.

    Args:
        device: ``"auto"`` (CUDA ``LOCAL_RANK`` when available, else CPU), ``"cpu"`` or
            ``"cuda"``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in one process)."""
    if info.distributed:
        dist.barrier()


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``values`` over the ranks (a copy; the input is untouched)."""
    out = values.detach().clone()
    if info.distributed:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= info.world_size
    return out


def wrap_model(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` in a process group, else ``model``."""
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    # Some parameters get no gradient (e.g. the encoder's mask token): let DDP find them.
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def shutdown(info: DistInfo) -> None:
    """Leave the process group (if any)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
