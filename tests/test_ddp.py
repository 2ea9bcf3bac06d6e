"""DDP under torchrun: 2 CPU processes (gloo), rank 0 writes, val scored over the whole split."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from beenet.evaluation.evaluate import evaluate_checkpoint
from beenet.artifacts.checkpoint import load_checkpoint
from beenet.distributed import DistInfo, gather_rows, make_train_sampler, shard_indices
from train_helpers import TINY, write_tiny_synth


def test_sampler_and_shards_cover_everything_once():
    n = 11
    shards = [shard_indices(n, DistInfo(rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    parts = []
    for r in range(2):
        s = make_train_sampler(list(range(n)), seed=5, info=DistInfo(rank=r, world_size=2))
        s.set_epoch(3)
        parts.append(list(s))
    assert len(parts[0]) == len(parts[1]) == 6
    assert set(parts[0]) | set(parts[1]) == set(range(n))
    # The order depends on (seed, epoch) only: the same sampler gives the same order again.
    s = make_train_sampler(list(range(n)), seed=5, info=DistInfo(rank=0, world_size=2))
    s.set_epoch(3)
    assert list(s) == parts[0]
    s.set_epoch(4)
    assert list(s) != parts[0]


def test_gather_rows_single_process_restores_order():
    import torch

    rows = torch.tensor([[2.0], [0.0], [1.0]])
    out = gather_rows(rows, torch.tensor([2, 0, 1]), 3, DistInfo())
    assert out.flatten().tolist() == [0.0, 1.0, 2.0]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    data = write_tiny_synth(tmp_path / "synth")
    out = tmp_path / "run"
    sets = [x for t in TINY if not t.startswith("optim.epochs") for x in ("--set", t)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "beenet", "train", "--data", str(data), "--out", str(out), "--config", "demo",
           "--epochs", "1", *sets]
    env = dict(os.environ, OMP_NUM_THREADS="1", BEENET_NO_PROGRESS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = (out / "train.log").read_text()
    assert "world size 2" in text
    # optim.batch_size is per process in the demo preset: the global batch is logged, and warned about.
    assert "global batch 16 = 8 per process x 2 process(es)" in text
    assert "the global batch is 16 (8 per process x 2 processes), not the recipe's optim.batch_size=8" in text
    # Only rank 0 reported and wrote: one report, one metrics row.
    assert proc.stdout.count("checkpoints:") == 1
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1
    last = load_checkpoint(out / "last.pt")
    assert len(last["rng"]["ranks"]) == 2
    # Validation under DDP gathered both ranks' shares in instance order: the same numbers as
    # scoring the saved model in one process.
    single = evaluate_checkpoint(data, out / "last.pt", split="val", batch_size=8, device="cpu")
    assert last["metrics"]["val"]["n"] == single["n"]
    for k in ("mAP", "mRA", "mR2", "ERS"):
        assert float(rows[0][f"val_{k}"]) == pytest.approx(single[k], abs=1e-5)


@pytest.mark.slow
def test_torchrun_one_process_logs_the_global_batch(tmp_path):
    """torchrun with one process (world size 1: no process group, gloo would serve more): a
    global batch of 4 is 4 per process, the LR unscaled, no warning."""
    data = write_tiny_synth(tmp_path / "synth", clips=12)
    out = tmp_path / "run"
    sets = [x for t in TINY if not t.startswith(("optim.epochs", "optim.batch_size")) for x in ("--set", t)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "beenet", "train", "--data", str(data), "--out", str(out), "--config", "paper",
           "--epochs", "1", *sets, "--set", "optim.batch_size=4", "--set", "optim.scale_lr=linear",
           "--set", "context.source=sidecar"]
    env = dict(os.environ, OMP_NUM_THREADS="1", BEENET_NO_PROGRESS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = (out / "train.log").read_text()
    assert "global batch 4 = 4 per process x 1 process(es); lr 0.01 (optim.batch_size=4, " \
           "optim.batch_size_is=global, optim.scale_lr=linear)" in text
    assert "not the recipe's" not in text
