"""No training step reads a value back from the device, apart from the loss every log_every steps.

A read-back is ``aten::_local_scalar_dense`` (``.item()``, ``float(t)``, ``bool(t)``, ``int(t)``):
on a GPU each one waits for the device to finish everything queued. Counted with torch.profiler
on the real training loop (CPU; the same code runs on a GPU), per ``beenet.train_step`` range.
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from beenet import distributed as D
from beenet.training.loop import _train_one_epoch
from beenet.training.setup import parallel_model, prepare_run, restore_run
from train_helpers import tiny_config, write_tiny_synth


def _host_only(e) -> bool:
    """AdamW's reads of its step counts: torch keeps ``state["step"]`` on the host unless the
    optimizer is capturable or fused, so on a GPU these read host memory (no device sync)."""
    p = e.cpu_parent
    while p is not None:
        if p.name.startswith("Optimizer.step#AdamW"):
            return True
        p = p.cpu_parent
    return False


def _reads_per_step(prof) -> list[int]:
    events = prof.events()
    steps = sorted((e for e in events if e.name == "beenet.train_step"), key=lambda e: e.time_range.start)
    counts = [0] * len(steps)
    for e in events:
        if e.name != "aten::_local_scalar_dense" or _host_only(e):
            continue
        for i, s in enumerate(steps):
            if s.time_range.start <= e.time_range.start and e.time_range.end <= s.time_range.end:
                counts[i] += 1
    return counts


@pytest.mark.slow  # ~20 s of CPU: a run set up twice
@pytest.mark.parametrize("preset, extra", [
    ("paper", ["optim.grad_clip=5.0"]),  # SGD, the beenet fusion, still frames
    pytest.param("demo", ["data.sampling=uniform", "data.num_frames=3", "data.body_crop=true",
                          "model.body_crop=shared"]),  # AdamW, T frames, crops
])
def test_a_training_step_reads_back_only_the_logged_loss(tmp_path, preset, extra):
    data = write_tiny_synth(tmp_path / "synth", clips=12)
    cfg = tiny_config(preset, ["optim.batch_size=2", "run.log_every=2", "context.source=sidecar",
                               "run.bn_recalibrate=0", *extra])
    device = torch.device("cpu")
    logging.getLogger("beenet").setLevel(logging.WARNING)
    with torch.random.fork_rng(devices=[]):
        run = prepare_run(cfg, data, tmp_path / "run", device, D.DistInfo(), resumed=False)
        restore_run(run, None)
        net = parallel_model(run)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            _train_one_epoch(run, net, 0)
    counts = _reads_per_step(prof)
    n = len(run.loader)
    assert len(counts) == n >= 3
    expected = [1 if (i + 1) % 2 == 0 or i == n - 1 else 0 for i in range(n)]
    assert counts == expected
