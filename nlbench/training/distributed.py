"""DistributedDataParallel under ``torchrun``: one process per device, same data everywhere.

Every rank holds the whole (small, in-memory) train set and draws the same batch order from
the same seeded generator; each rank trains on its slice of every batch, DDP averages the
gradients, and per-sample scans are computed on shards and all-gathered so GMMs and selectors
see every sample. Only rank 0 writes records and checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def setup(device_name: str) -> tuple[DistInfo, str]:
    """Join the process group torchrun describes (no-op outside torchrun).

    Returns the info and the device to use (``cuda:<local_rank>`` on GPUs).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE, device_name
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
        return info, f"cuda:{info.local_rank}"
    return info, "cpu"


def teardown(info: DistInfo, finished: bool = True) -> None:
    """Leave the process group together: a rank that destroys its gloo group while another is
    still writing can abort at exit ("terminate called without an active exception")."""
    if info.active and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def wrap(net: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """DDP-wrap a network when running distributed; the plain network otherwise."""
    if not info.active:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)


def unwrap(net: torch.nn.Module) -> torch.nn.Module:
    """The underlying module of a DDP wrapper (timm-contract methods live there)."""
    return net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net


def shard_range(n: int, info: DistInfo) -> tuple[int, int]:
    """Contiguous [start, stop) of ``n`` items owned by this rank."""
    per = -(-n // info.world)
    return min(n, info.rank * per), min(n, (info.rank + 1) * per)


def gather_rows(part: torch.Tensor, n: int, info: DistInfo) -> torch.Tensor:
    """All-gather per-rank contiguous shards (possibly unequal) back into ``n`` rows."""
    if not info.active:
        return part
    per = -(-n // info.world)
    padded = part.new_zeros((per, *part.shape[1:]))
    padded[: part.shape[0]] = part
    chunks = [torch.empty_like(padded) for _ in range(info.world)]
    dist.all_gather(chunks, padded.contiguous())
    return torch.cat(chunks)[:n]


def average_grads(params: Iterable[torch.Tensor]) -> None:
    """Mean the ``.grad`` of parameters that DDP does not own (meta-nets, FaMUS samplers)
    over the ranks, in one all-reduce, so every rank takes the same step and they stay equal.

    A no-op outside a process group. Each rank's gradient comes from its own slice of the
    batch, so the mean is the meta-gradient of the whole batch (as DDP's is for the network).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for g, part in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(part.view_as(g))


def sum_scalar(value: float, info: DistInfo) -> float:
    if not info.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t)


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()
