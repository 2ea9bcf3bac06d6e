"""GPU-facing training settings: mixed precision resolution, torch.compile, DDP's unused-parameter
search. Runs on CPU; the CUDA branches of :func:`resolve_amp` take the GPU's bf16 capability as an
argument."""

from __future__ import annotations

import pytest
import torch
from train_helpers import tiny_config, write_tiny_synth

from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset
from beenet.device import autocast_context, resolve_amp
from beenet.errors import ConfigError
from beenet.models import build_model
from beenet.run_config import load_config
from beenet.training.loop import RESUMABLE_CHANGES, unused_parameters

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_tiny_synth(tmp_path_factory.mktemp("data") / "synth")


@pytest.mark.parametrize("amp", ["off", "auto", "bf16", "fp16"])
def test_amp_is_off_on_cpu(amp):
    assert resolve_amp(amp, CPU) == "off"
    # the autocast context is then disabled: a matmul stays float32
    with autocast_context(CPU, amp):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_amp_auto_on_cuda_follows_bf16_support():
    assert resolve_amp("auto", CUDA, bf16_supported=lambda: True) == "bf16"
    assert resolve_amp("auto", CUDA, bf16_supported=lambda: False) == "fp16"
    # explicit choices are kept; off stays off whatever the GPU
    assert resolve_amp("fp16", CUDA, bf16_supported=lambda: True) == "fp16"
    assert resolve_amp("bf16", CUDA, bf16_supported=lambda: False) == "bf16"
    assert resolve_amp("off", CUDA, bf16_supported=lambda: True) == "off"


def test_amp_and_compile_config():
    assert load_config("paper").run.amp == "auto" and load_config("video").run.amp == "auto"
    assert load_config("demo").run.amp == "off"
    c = load_config("demo", ["run.amp=auto", "run.compile=true"])
    assert c.run.amp == "auto" and c.run.compile is True
    with pytest.raises(ConfigError, match="run.amp"):
        load_config("demo", ["run.amp=fp8"])
    # hardware settings: a resumed run may change them
    assert "run.amp" in RESUMABLE_CHANGES and "run.compile" in RESUMABLE_CHANGES


class _WithSpare(torch.nn.Module):
    """A real BEE-NET plus a layer its forward never calls (as a variant with an idle branch)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.net = model
        self.spare = torch.nn.Linear(3, 3)

    def forward(self, batch):
        return self.net(batch)


def test_unused_parameters_found_by_a_dry_step(synth):
    cfg = tiny_config("demo", ["context.source=sidecar"])
    bold = BoLD(synth)
    inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    ds = BoLDDataset(bold, inst, cfg.data, train=True, seed=0)
    model = build_model(cfg.model, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    assert unused_parameters(model, ds, cfg, CPU) == []
    # the probe left the model (weights, BatchNorm statistics) and the RNG as they were
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in model.parameters())
    assert unused_parameters(_WithSpare(model), ds, cfg, CPU) == ["spare.weight", "spare.bias"]
    # frozen parameters are not DDP's concern
    spare = _WithSpare(model)
    spare.spare.requires_grad_(False)
    assert unused_parameters(spare, ds, cfg, CPU) == []


def test_compile_wraps_the_model_it_trains():
    # torch.compile is lazy: wrapping costs nothing; compiling the first step on this CPU did not
    # finish within minutes, so a compiled step is not run here (a GPU machine should run one).
    from beenet.training.loop import compiled_for_training

    model = build_model(tiny_config("demo").model, seed=0)
    assert compiled_for_training(model, tiny_config("demo")) is model
    net = compiled_for_training(model, tiny_config("demo", ["run.compile=true"]))
    assert net is not model and net._orig_mod is model
    assert {n for n, _ in net.named_parameters()} == {f"_orig_mod.{n}" for n, _ in model.named_parameters()}
    assert all(a is b for a, b in zip(net.parameters(), model.parameters()))
