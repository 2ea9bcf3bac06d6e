"""Latency of a model variant: median forward time per sample on random inputs of its shapes."""

from __future__ import annotations

import time

import numpy as np
import torch

from beenet.labels import CONTEXT_DIM, CONTEXT_SLICES, NUM_JOINTS
from beenet.run_config import RunConfig


def dummy_batch(cfg: RunConfig, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random inputs of the shapes ``cfg``'s model reads (for latency measurements)."""
    g = torch.Generator().manual_seed(0)
    d = cfg.data
    T = d.frames_per_sample
    b: dict[str, torch.Tensor] = {
        "frames": torch.randn(batch_size, T, 3, d.image_size, d.image_size, generator=g),
        "frame_mask": torch.ones(batch_size, T, dtype=torch.bool),
    }
    if cfg.model.body_crop != "none":
        b["crops"] = torch.randn(batch_size, T, 3, d.crop_size, d.crop_size, generator=g)
    if cfg.model.skeleton:
        b["skeleton"] = torch.randn(batch_size, d.skeleton_frames, NUM_JOINTS, 3, generator=g)
        b["skeleton_mask"] = torch.ones(batch_size, d.skeleton_frames, NUM_JOINTS, dtype=torch.bool)
    ctx = torch.rand(batch_size, CONTEXT_DIM, generator=g)
    for sl in CONTEXT_SLICES.values():
        ctx[:, sl] /= ctx[:, sl].sum(1, keepdim=True)
    b["context"] = ctx
    return {k: v.to(device) for k, v in b.items()}


@torch.no_grad()
def latency_ms(model: torch.nn.Module, cfg: RunConfig, device: torch.device, batch_size: int = 8,
               repeats: int = 5) -> float:
    """Median forward time per sample (ms) on a batch of ``batch_size``, after a warm-up pass."""
    model.eval()
    batch = dummy_batch(cfg, batch_size, device)
    model(batch)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times)) / batch_size
