"""The training DataLoader: persistent workers that still draw each sample as in its epoch.

The sampler yields ``(epoch, index)`` pairs and the dataset wrapper moves the dataset to that epoch
before reading ``index``, so workers live across epochs (no re-spawn, no warm-up per epoch) while
every sample's random draws still come from ``(seed, epoch, index)``: a resumed run reads the
same batches as one that never stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from beenet.data.dataset import collate


class EpochTaggedSampler(Sampler):
    """Yields ``(epoch, index)`` pairs, so DataLoader workers learn the epoch with each index."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = int(self.sampler.epoch)
        return ((epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class EpochTaggedDataset(Dataset):
    """``dataset[(epoch, index)]`` -> the sample of ``index`` drawn as in ``epoch``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        if self.dataset.epoch != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


#: Batches each worker keeps ready (DataLoader's ``prefetch_factor``; its default is 2).
PREFETCH_FACTOR = 4
#: Most workers ``run.num_workers=-1`` gives one process (beyond this, memory grows, speed does not).
MAX_AUTO_WORKERS = 16


def resolve_num_workers(num_workers: int, cpu_count: int | None = None, local_procs: int | None = None) -> int:
    """``run.num_workers``; -1 (auto) = the cores available to this process shared among the run's
    processes on this machine (``LOCAL_WORLD_SIZE`` under torchrun), one left for the process itself."""
    if num_workers >= 0:
        return int(num_workers)
    if cpu_count is None:
        cpu_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if local_procs is None:
        local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(0, min(MAX_AUTO_WORKERS, cpu_count // max(1, local_procs) - 1))


def make_train_loader(dataset: Any, batch_size: int, sampler: Any, num_workers: int, device: torch.device,
                      seed: int) -> DataLoader:
    """The training loader; ``sampler`` must have ``set_epoch`` and ``epoch`` (DistributedSampler)."""
    n = len(sampler)
    # A last batch of a single sample breaks BatchNorm in training mode: drop only that case.
    drop_last = n > batch_size and n % batch_size == 1
    gen = torch.Generator()
    gen.manual_seed(seed)  # the loader draws worker seeds from this, not from the global RNG
    return DataLoader(
        EpochTaggedDataset(dataset), batch_size=batch_size, sampler=EpochTaggedSampler(sampler),
        num_workers=num_workers, collate_fn=collate, pin_memory=device.type == "cuda", drop_last=drop_last,
        generator=gen, persistent_workers=num_workers > 0,
        prefetch_factor=PREFETCH_FACTOR if num_workers > 0 else None,
    )
