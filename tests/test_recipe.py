"""The recipe under torchrun (batch and LR from the world size), /dev/shm, deterministic kernels,
the training loader's full batches and the validation loader kept across epochs."""

from __future__ import annotations

import math

import pytest
import torch

from beenet import distributed as D
from beenet.errors import ConfigError
from beenet.run_config import RunConfig, load_config
from beenet.training.loader import check_shared_memory, make_train_loader, sample_bytes
from beenet.training.recipe import batch_plan, recipe_warning
from beenet.training.setup import deterministic_kernels

MB = 1 << 20


def test_world_size_one_is_the_recipe_as_written():
    for preset in ("paper", "demo", "video"):
        cfg = load_config(preset)
        plan = batch_plan(cfg.optim, 1)
        assert plan.per_process == plan.global_batch == cfg.optim.batch_size
        assert plan.lr == cfg.optim.lr and plan.lr_factor == 1.0
        assert recipe_warning(plan, cfg.optim.scale_lr) is None


def test_paper_preset_keeps_the_authors_global_batch_of_8():
    cfg = load_config("paper")
    assert (cfg.optim.batch_size, cfg.optim.batch_size_is, cfg.optim.scale_lr) == (8, "global", "none")
    plan = batch_plan(cfg.optim, 4)  # a simulated torchrun --nproc_per_node 4
    assert (plan.per_process, plan.global_batch, plan.lr) == (2, 8, cfg.optim.lr)
    assert "global batch 8 = 2 per process x 4" in plan.describe()
    with pytest.raises(ConfigError, match="optim.batch_size_is=per_gpu"):
        batch_plan(cfg.optim, 8)  # 1 sample per GPU: BatchNorm cannot train on it


@pytest.mark.parametrize("scale, factor", [("none", 1.0), ("linear", 8.0), ("sqrt", math.sqrt(8.0))])
def test_per_gpu_batches_grow_with_the_world_and_scale_the_lr_as_asked(scale, factor):
    cfg = load_config("paper", ["optim.batch_size_is=per_gpu", f"optim.scale_lr={scale}"])
    plan = batch_plan(cfg.optim, 8)
    assert (plan.per_process, plan.global_batch) == (8, 64)
    assert plan.lr == pytest.approx(cfg.optim.lr * factor) and plan.lr_factor == pytest.approx(factor)
    warning = recipe_warning(plan, scale)
    assert warning is not None and "global batch is 64" in warning and "optim.batch_size=8" in warning
    assert ("not scaled" in warning) == (scale == "none")


def test_a_global_batch_must_split_evenly():
    cfg = load_config("demo", ["optim.batch_size=12", "optim.batch_size_is=global"])
    assert batch_plan(cfg.optim, 3).per_process == 4
    with pytest.raises(ConfigError, match="optim.batch_size=12.*5 processes"):
        batch_plan(cfg.optim, 5)


def test_configs_without_the_new_keys_keep_their_behaviour():
    stored = load_config("paper").to_dict()
    for key in ("batch_size_is", "scale_lr"):
        del stored["optim"][key]
    del stored["run"]["deterministic"]
    old = RunConfig.from_dict(stored)
    assert (old.optim.batch_size_is, old.optim.scale_lr, old.run.deterministic) == ("per_gpu", "none", False)
    plan = batch_plan(old.optim, 2)
    assert (plan.per_process, plan.global_batch, plan.lr) == (8, 16, old.optim.lr)  # as before: per process
    with pytest.raises(ConfigError, match="scale_lr"):
        load_config("paper", ["optim.scale_lr=cubic"])


def test_shared_memory_check_says_what_to_do():
    batch = 2 * 8 * 3 * 224 * 224  # a validation batch of 16 stills at 224 px, uint8
    assert check_shared_memory(batch, 4, free_bytes=8 << 30) is None
    assert check_shared_memory(batch, 4, free_bytes=None) is None  # no /dev/shm: nothing to say
    assert check_shared_memory(batch, 0, free_bytes=1) is None  # no workers: no shared memory
    tight = check_shared_memory(batch, 4, free_bytes=60 * MB)  # 37 MB needed of 60 free: a warning
    assert tight is not None and "--shm-size=1g" in tight and "run.num_workers=" in tight
    with pytest.raises(ConfigError, match=r"need about 147 MB.*64 MB free.*--shm-size=1g.*run.num_workers=0 "):
        check_shared_memory(batch, 4, free_bytes=64 * MB, local_procs=4)  # Docker's default 64 MB, 4 ranks


def test_deterministic_kernels_are_on_inside_and_put_back_after(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_kernels(False):
        assert torch.are_deterministic_algorithms_enabled() == before
    with deterministic_kernels(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled() == before
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


class _Numbers:
    """A dataset of 10 samples with an epoch (what the training loader wraps)."""

    epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"frames": torch.full((1, 3, 2, 2), i, dtype=torch.uint8), "frame_mask": torch.ones(1, dtype=torch.bool)}


def test_training_batches_are_all_full():
    ds = _Numbers()
    sampler = D.make_train_sampler(ds, 0, D.DistInfo())
    loader = make_train_loader(ds, 4, sampler, 0, torch.device("cpu"), 0)
    assert loader.drop_last and [len(b["frames"]) for b in loader] == [4, 4]
    assert sample_bytes(ds[0]) == 12 + 1
    small = make_train_loader(ds, 16, sampler, 0, torch.device("cpu"), 0)  # shorter than a batch: kept
    assert [len(b["frames"]) for b in small] == [10]


@pytest.mark.slow
def test_the_validation_loader_and_its_workers_live_across_epochs(tmp_path):
    from beenet.training.loop import _validate
    from beenet.training.setup import prepare_run
    from train_helpers import tiny_config, write_tiny_synth

    data = write_tiny_synth(tmp_path / "synth", clips=12)
    cfg = tiny_config("demo", ["run.num_workers=1", "run.bn_recalibrate=0", "context.source=sidecar"])
    with torch.random.fork_rng(devices=[]):
        run = prepare_run(cfg, data, tmp_path / "run", torch.device("cpu"), D.DistInfo(), resumed=False)
        first = _validate(run, 0)
        loader = run.val_loader
        pids = [w.pid for w in loader._iterator._workers]
        second = _validate(run, 1)
    assert run.val_loader is loader and loader.persistent_workers
    assert [w.pid for w in loader._iterator._workers] == pids and all(w.is_alive() for w in loader._iterator._workers)
    assert first["ERS"] == second["ERS"]  # the same model, the same val batches
