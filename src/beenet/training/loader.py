"""The training DataLoader: persistent workers that still draw each sample as in its epoch.

The sampler yields ``(epoch, index)`` pairs and the dataset wrapper moves the dataset to that epoch
before reading ``index``, so workers live across epochs (no re-spawn, no warm-up per epoch) while
every sample's random draws still come from ``(seed, epoch, index)``: a resumed run reads the
same batches as one that never stopped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from beenet.data.dataset import collate
from beenet.device import MAX_AUTO_WORKERS, resolve_num_workers  # noqa: F401 (re-exported: training's name for it)
from beenet.errors import ConfigError


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


def make_train_loader(dataset: Any, batch_size: int, sampler: Any, num_workers: int, device: torch.device,
                      seed: int) -> DataLoader:
    """The training loader; ``sampler`` must have ``set_epoch`` and ``epoch`` (DistributedSampler).
    ``batch_size`` is per process (:func:`beenet.training.recipe.batch_plan`)."""
    # Every step sees a full batch: one shape, so a compiled step does not recompile for a smaller
    # last batch, and no 1-sample tail breaks BatchNorm. The tail (fewer than batch_size samples of
    # this epoch's shuffle; others each epoch) is left out; a sampler shorter than one batch is kept.
    drop_last = len(sampler) >= batch_size
    gen = torch.Generator()
    gen.manual_seed(seed)  # the loader draws worker seeds from this, not from the global RNG
    return DataLoader(
        EpochTaggedDataset(dataset), batch_size=batch_size, sampler=EpochTaggedSampler(sampler),
        num_workers=num_workers, collate_fn=collate, pin_memory=device.type == "cuda", drop_last=drop_last,
        generator=gen, persistent_workers=num_workers > 0,
        prefetch_factor=PREFETCH_FACTOR if num_workers > 0 else None,
    )


# --------------------------------------------------------------------------- shared memory

#: Where DataLoader workers put the batches they hand over (Linux shared memory).
SHM_PATH = "/dev/shm"


def sample_bytes(sample: dict[str, Any]) -> int:
    """Bytes of the tensors of one sample dict (what a worker writes to shared memory for it)."""
    return sum(v.numel() * v.element_size() for v in sample.values() if torch.is_tensor(v))


def shm_free_bytes(path: str = SHM_PATH) -> int | None:
    """Free bytes of the shared-memory file system, or None where there is none (not Linux)."""
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return None


def check_shared_memory(batch_bytes: int, num_workers: int, free_bytes: int | None, local_procs: int = 1,
                        prefetch: int = PREFETCH_FACTOR) -> str | None:
    """Check, before the first batch, that the loader's workers have the shared memory they need.

    Need: ``batch_bytes`` (the largest batch: validation's) x ``prefetch`` batches in flight per
    worker x ``num_workers`` x ``local_procs`` (the run's processes on this machine share
    ``/dev/shm``). Raises :class:`~beenet.errors.ConfigError` when the need exceeds ``free_bytes``
    (the workers would die with "Bus error"); returns a warning when it takes over half of it
    (other processes share it too); None when it fits, or when nothing is known (``free_bytes``
    None, no workers).
    """
    if free_bytes is None or num_workers <= 0:
        return None
    need = int(batch_bytes) * int(prefetch) * int(num_workers) * max(1, int(local_procs))
    if 2 * need <= free_bytes:
        return None
    mb = 1 << 20
    size_gb = max(1, -(-2 * need // (1 << 30)))  # twice the need, whole GB
    fewer = max(0, int(num_workers * free_bytes // (2 * need)))
    text = (f"the DataLoader workers need about {need / mb:.0f} MB of shared memory ({SHM_PATH}): "
            f"batches of {batch_bytes / mb:.1f} MB x {prefetch} in flight x {num_workers} worker(s) x "
            f"{max(1, local_procs)} process(es) on this machine, and {SHM_PATH} has {free_bytes / mb:.0f} MB free. "
            f"In Docker give the container more (docker run --shm-size={size_gb}g, or --ipc=host), or use fewer "
            f"workers: --set run.num_workers={fewer} (0 loads in the main process, without shared memory)")
    if need > free_bytes:
        raise ConfigError(text)
    return text
