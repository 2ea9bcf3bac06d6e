"""The optimiser's parameter groups, the per-group learning-rate schedule and its resume."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from beenet.errors import CheckpointError, ConfigError
from beenet.models import build_model
from beenet.training.optim import EpochSchedule, build_optimizer, load_optimizer_state
from train_helpers import tiny_config

NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _model_and_cfg(extra: list[str] = ()):
    cfg = tiny_config("demo", list(extra))
    return build_model(cfg.model, seed=0), cfg


def _groups_by_name(optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    return {g["name"]: g for g in optimizer.param_groups}


def _where(optimizer: torch.optim.Optimizer) -> dict[int, list[str]]:
    """id(parameter) -> the names of the groups that hold it."""
    found: dict[int, list[str]] = {}
    for g in optimizer.param_groups:
        for p in g["params"]:
            found.setdefault(id(p), []).append(g["name"])
    return found


def _lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {g["name"]: g["lr"] for g in optimizer.param_groups}


def _roundtrip(obj):
    """Through torch.save / torch.load(weights_only=True), as a checkpoint goes."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_norms_biases_and_priors_get_no_weight_decay():
    model, cfg = _model_and_cfg(["model.trainable_priors=true", "optim.weight_decay=0.05"])
    opt = build_optimizer(model, cfg)
    groups = _groups_by_name(opt)
    assert list(groups) == ["head/decay", "head/no_decay", "trunk/decay", "trunk/no_decay"]
    assert [g["weight_decay"] for g in groups.values()] == [0.05, 0.0, 0.05, 0.0]

    where = _where(opt)
    named = dict(model.named_parameters())
    # The priors are 2-D parameters: only BEENet.no_weight_decay() keeps them out of the decay.
    assert model.no_weight_decay() == {"priors.p_pos", "priors.p_neg", "priors.vad_pos", "priors.vad_neg"}
    for name in model.no_weight_decay():
        assert named[name].ndim == 2 and where[id(named[name])] == ["head/no_decay"]
    norm_params = [p for m in model.modules() if isinstance(m, NORMS) for p in m.parameters(recurse=False)]
    assert len(norm_params) > 20
    assert all(where[id(p)][0].endswith("/no_decay") for p in norm_params)
    biases = [p for n, p in named.items() if n.endswith(".bias") and p.requires_grad]  # frozen: in no group
    assert biases and all(where[id(p)][0].endswith("/no_decay") for p in biases)
    assert where[id(model.trunk.conv1.conv.weight)] == ["trunk/decay"]
    assert where[id(model.trunk.conv1.bn.weight)] == ["trunk/no_decay"]
    assert where[id(model.fusion.classifier.weight)] == ["head/decay"]
    assert where[id(model.fusion.vad_gate)] == ["head/no_decay"]


def test_every_trainable_parameter_in_exactly_one_group_frozen_in_none():
    model, cfg = _model_and_cfg()
    assert model.no_weight_decay() == set()  # trainable_priors=false: the priors are buffers
    model.trunk.requires_grad_(False)
    opt = build_optimizer(model, cfg)
    assert [g["name"] for g in opt.param_groups] == ["head/decay", "head/no_decay"]
    where = _where(opt)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == sum(len(g["params"]) for g in opt.param_groups)
    assert all(len(where[id(p)]) == 1 for p in trainable)
    assert not any(id(p) in where for p in model.trunk.parameters())


def test_separate_crop_trunk_is_in_the_trunk_groups():
    model, cfg = _model_and_cfg(["data.body_crop=true", "model.body_crop=separate", "optim.trunk_lr_scale=0.25"])
    opt = build_optimizer(model, cfg)
    where = _where(opt)
    assert where[id(model.crop_trunk.conv1.conv.weight)] == ["trunk/decay"]
    assert all(where[id(p)][0].startswith("trunk/") for p in model.crop_trunk.parameters())
    assert all(where[id(p)][0].startswith("head/") for p in model.crop_stream.parameters())
    assert _lrs(opt) == pytest.approx({"head/decay": 0.01, "head/no_decay": 0.01,
                                       "trunk/decay": 0.0025, "trunk/no_decay": 0.0025})


def test_step_schedule_scales_each_groups_own_lr():
    model, cfg = _model_and_cfg(["optim.lr=0.02", "optim.trunk_lr_scale=0.1", "optim.schedule=step",
                                 "optim.warmup_epochs=2", "optim.step_epochs=3", "optim.gamma=0.5",
                                 "optim.epochs=10"])
    opt = build_optimizer(model, cfg)
    schedule = EpochSchedule(opt, cfg)
    factors = [1 / 3, 2 / 3, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    for epoch, f in enumerate(factors):
        schedule.set_epoch(epoch)
        lrs = _lrs(opt)
        assert lrs["head/decay"] == pytest.approx(0.02 * f) and lrs["head/no_decay"] == pytest.approx(0.02 * f)
        assert lrs["trunk/decay"] == pytest.approx(0.002 * f) and lrs["trunk/no_decay"] == pytest.approx(0.002 * f)
        assert schedule.lr == pytest.approx(0.02 * f)  # the run's lr (metrics.csv) is optim.lr's


def test_cosine_schedule_with_warmup_per_group():
    model, cfg = _model_and_cfg(["optim.lr=0.1", "optim.trunk_lr_scale=0.5", "optim.schedule=cosine",
                                 "optim.warmup_epochs=1", "optim.epochs=5"])
    opt = build_optimizer(model, cfg)
    schedule = EpochSchedule(opt, cfg)
    expected_head = [0.05, 0.1, 0.0853553, 0.05, 0.0146447]
    for epoch, head in enumerate(expected_head):
        schedule.set_epoch(epoch)
        lrs = _lrs(opt)
        assert lrs["head/decay"] == pytest.approx(head, abs=1e-7)
        assert lrs["trunk/decay"] == pytest.approx(head / 2, abs=1e-7)


def test_trunk_lr_scale_must_be_positive():
    with pytest.raises(ConfigError, match="optim.trunk_lr_scale"):
        tiny_config("demo", ["optim.trunk_lr_scale=0"])


def test_state_dict_round_trip_restores_each_groups_lr_and_state():
    extra = ["optim.optimizer=sgd", "optim.lr=0.04", "optim.trunk_lr_scale=0.25", "optim.schedule=step",
             "optim.step_epochs=2", "optim.gamma=0.1", "optim.epochs=6"]
    model, cfg = _model_and_cfg(extra)
    opt = build_optimizer(model, cfg)
    schedule = EpochSchedule(opt, cfg)
    schedule.set_epoch(3)
    for p in model.parameters():
        p.grad = torch.ones_like(p) if p.requires_grad else None
    opt.step()
    saved_opt, saved_sched = _roundtrip(opt.state_dict()), _roundtrip(schedule.state_dict())
    assert saved_sched == {"epoch": 3, "base_lrs": pytest.approx([0.04, 0.04, 0.01, 0.01])}

    model2, _ = _model_and_cfg(extra)
    opt2 = build_optimizer(model2, cfg)
    schedule2 = EpochSchedule(opt2, cfg)
    assert _lrs(opt2)["trunk/decay"] == pytest.approx(0.01)  # epoch 0
    load_optimizer_state(opt2, saved_opt, model2)
    schedule2.load_state_dict(saved_sched)
    assert schedule2.epoch == 3
    assert _lrs(opt2) == pytest.approx({"head/decay": 0.004, "head/no_decay": 0.004,
                                        "trunk/decay": 0.001, "trunk/no_decay": 0.001})
    assert _lrs(opt2) == pytest.approx(_lrs(opt))
    for g, g2 in zip(opt.param_groups, opt2.param_groups):
        for p, p2 in zip(g["params"], g2["params"]):
            assert torch.equal(opt.state[p]["momentum_buffer"], opt2.state[p2]["momentum_buffer"])
    schedule2.set_epoch(4)
    assert _lrs(opt2)["trunk/no_decay"] == pytest.approx(0.0001)


def test_checkpoint_from_before_parameter_groups_still_resumes():
    """Old last.pt files hold one SGD group over model.parameters() and one base LR."""
    model, cfg = _model_and_cfg(["optim.optimizer=sgd", "optim.lr=0.03", "optim.schedule=step",
                                 "optim.step_epochs=2", "optim.gamma=0.5", "optim.epochs=6"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    old = torch.optim.SGD(trainable, lr=0.03, momentum=0.9, weight_decay=5e-3)
    for i, p in enumerate(trainable):
        p.grad = torch.full_like(p, float(i + 1))
    old.step()
    old_state = _roundtrip(old.state_dict())

    opt = build_optimizer(model, cfg)
    schedule = EpochSchedule(opt, cfg)
    load_optimizer_state(opt, old_state, model)
    schedule.load_state_dict({"epoch": 2, "base_lrs": [0.03]})
    assert len(opt.param_groups) == 4
    assert all(g["lr"] == pytest.approx(0.015) for g in opt.param_groups)
    for p in trainable:  # each parameter got its own momentum back, wherever its group is now
        assert torch.equal(opt.state[p]["momentum_buffer"], old.state[p]["momentum_buffer"])
    assert [g["weight_decay"] for g in opt.param_groups] == [cfg.optim.weight_decay, 0.0] * 2


def test_schedule_state_of_another_grouping_is_refused():
    model, cfg = _model_and_cfg()
    schedule = EpochSchedule(build_optimizer(model, cfg), cfg)
    with pytest.raises(CheckpointError, match="3 learning rates"):
        schedule.load_state_dict({"epoch": 1, "base_lrs": [0.1, 0.1, 0.1]})


def test_decay_1d_decays_norms_and_biases_as_the_authors_but_never_the_priors():
    """optim.decay_1d=true (the paper preset, the authors' scaffold: one SGD group with weight
    decay over every trainable parameter): 1-D parameters decay too; trainable priors still do not."""
    from beenet.run_config import RunConfig, load_config

    model, cfg = _model_and_cfg(["model.trainable_priors=true", "optim.weight_decay=0.05", "optim.decay_1d=true"])
    opt = build_optimizer(model, cfg)
    groups = _groups_by_name(opt)
    assert list(groups) == ["head/decay", "head/no_decay", "trunk/decay"]
    assert {id(p) for p in groups["head/no_decay"]["params"]} == {
        id(p) for n, p in model.named_parameters() if n in model.no_weight_decay()}
    where = _where(opt)
    assert where[id(model.trunk.conv1.bn.weight)] == ["trunk/decay"]
    assert where[id(model.fusion.vad_gate)] == ["head/decay"]
    assert load_config("paper").optim.decay_1d is True and load_config("demo").optim.decay_1d is False
    old = RunConfig().to_dict()
    del old["optim"]["decay_1d"]  # a run saved before the switch: norms and biases were exempt
    assert RunConfig.from_dict(old).optim.decay_1d is False
