"""Where tensors run: one owner for device resolution, moving batches, and mixed precision.

Every part that picks a device (training, evaluation, prediction, the context experts) calls
:func:`resolve_device`, so ``auto``, ``cpu``, ``cuda`` and ``cuda:N`` mean the same everywhere
and asking for a GPU that is not there is the same clear error everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch

from beenet.errors import ConfigError

#: Spellings :func:`resolve_device` accepts (besides a ``torch.device``): any device string torch
#: understands, checked against what this machine has.
DEVICE_HELP = "auto, cpu, cuda, cuda:N, mps, or any torch device string"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else as given, checked.

    Raises :class:`~beenet.errors.ConfigError` for a CUDA device when torch sees no GPU, and for a
    string torch does not understand.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not a device torch knows; use one of {DEVICE_HELP}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU here; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"device {name!r} asked for, but torch sees {count} CUDA GPU(s): "
                              f"{', '.join(f'cuda:{i}' for i in range(count))}")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} asked for, but this torch build or machine has no Apple MPS; use --device cpu")
    return dev


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a collated batch to ``device`` (other values stay as they are)."""
    nb = device.type == "cuda"
    return {k: (v.to(device, non_blocking=nb) if torch.is_tensor(v) else v) for k, v in batch.items()}


def resolve_amp(amp: str, device: torch.device, bf16_supported: Callable[[], bool] | None = None) -> str:
    """The mixed precision that ``amp`` means on ``device``: ``off``, ``bf16`` or ``fp16``.

    ``auto`` is bf16 on a CUDA GPU that supports it (``bf16_supported``, by default
    ``torch.cuda.is_bf16_supported``; Ampere and later), else fp16 (with a gradient scaler), and
    ``off`` on anything but CUDA. An explicit ``bf16``/``fp16`` is kept on CUDA; off elsewhere.
    """
    if device.type != "cuda" or amp == "off":
        return "off"
    if amp != "auto":
        return amp
    supported = torch.cuda.is_bf16_supported if bf16_supported is None else bf16_supported
    return "bf16" if supported() else "fp16"


def autocast_context(device: torch.device, amp: str) -> Any:
    """Mixed-precision autocast on CUDA (``bf16`` / ``fp16`` / ``auto``, see :func:`resolve_amp`);
    a no-op elsewhere or with ``off``."""
    amp = resolve_amp(amp, device)
    if amp == "off":
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


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
