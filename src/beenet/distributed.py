"""Data-parallel training under ``torchrun``: process group from the environment, rank-0 writes.

``torchrun --nproc_per_node N -m beenet train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and starts a process group
(``nccl`` on GPUs, ``gloo`` on CPU). Without them everything here degrades to one process, so the
trainer has a single code path. The RNG helpers here let a resumed run continue every rank's
random stream where it stopped.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``; ``local_rank`` picks its GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device) -> DistInfo:
    """Start the process group when launched by torchrun (``WORLD_SIZE`` > 1); else a 1-process info."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    log.info("DDP: rank %d of %d (local rank %d), backend %s", rank, world, local_rank, backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, initialized_here=True)


def cleanup(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(obj: object, info: DistInfo) -> object:
    """Rank 0's ``obj`` on every rank (e.g. a decision only rank 0 could make)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def rank0_first(info: DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first (writing caches, splits, downloads); then the others run it."""
    if info.enabled and not info.is_main:
        barrier(info)
    yield
    if info.enabled and info.is_main:
        barrier(info)


def all_reduce_mean(values: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Mean of each value over the ranks (per-epoch training losses)."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def sync_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP syncs buffers at the start of each training forward, so after the last step every rank
    holds statistics from its own last batch; validation and the saved checkpoint must agree.
    """
    if not info.enabled:
        return
    for buf in module.buffers():
        dist.broadcast(buf.data, src=0)


def shard_indices(n: int, info: DistInfo) -> list[int]:
    """This rank's share of ``range(n)`` for evaluation: every index once over all ranks, no padding."""
    return list(range(info.rank, n, info.world_size))


def gather_rows(rows: torch.Tensor, indices: torch.Tensor, n: int, info: DistInfo) -> torch.Tensor:
    """Assemble per-rank rows ``[k_r, D]`` (at dataset ``indices``) into ``[n, D]`` in instance order.

    Every rank gets the full result, so val scores are over the whole split whatever the world size.
    """
    rows = rows.detach()
    if not info.enabled:
        out = torch.full((n, rows.shape[1]), float("nan"), dtype=rows.dtype, device=rows.device)
        out[indices.long()] = rows
        return out
    k = torch.tensor([rows.shape[0]], device=rows.device)
    sizes = [torch.zeros_like(k) for _ in range(info.world_size)]
    dist.all_gather(sizes, k)
    kmax = int(max(int(s.item()) for s in sizes))
    pad_rows = torch.zeros((kmax, rows.shape[1]), dtype=rows.dtype, device=rows.device)
    pad_rows[: rows.shape[0]] = rows
    pad_idx = torch.full((kmax,), -1, dtype=torch.long, device=rows.device)
    pad_idx[: rows.shape[0]] = indices.long()
    all_rows = [torch.zeros_like(pad_rows) for _ in range(info.world_size)]
    all_idx = [torch.zeros_like(pad_idx) for _ in range(info.world_size)]
    dist.all_gather(all_rows, pad_rows)
    dist.all_gather(all_idx, pad_idx)
    out = torch.full((n, rows.shape[1]), float("nan"), dtype=rows.dtype, device=rows.device)
    for r, ix in zip(all_rows, all_idx):
        keep = ix >= 0
        out[ix[keep]] = r[keep]
    return out


def make_train_sampler(dataset: Sized, seed: int, info: DistInfo) -> DistributedSampler:
    """The training sampler: a seeded shuffle per epoch (call ``set_epoch``), split over the ranks.

    ``DistributedSampler`` with explicit ``num_replicas``/``rank`` needs no process group, so one
    process uses it too: the order depends only on ``(seed, epoch)``, which makes resuming exact.
    """
    return DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                              seed=seed, drop_last=False)


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's torch RNG state (and the CUDA one of ``device``)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore a state of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def gather_rng(device: torch.device, info: DistInfo) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank order), so a resumed DDP run continues each rank's stream."""
    mine = rng_state(device)
    if not info.enabled:
        return [mine]
    cpu_mine = {k: v.cpu() for k, v in mine.items()}
    allstates: list[Any] = [None] * info.world_size
    dist.all_gather_object(allstates, cpu_mine)
    return allstates
