"""beenet's own GoogLeNet (``beenet.models.googlenet``) against torchvision's: the same parameter and
buffer names and shapes, the same outputs on the same weights, the same seeded random init, the same
published file; and building + loading a model leaves torchvision unimported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models import GoogLeNet_Weights

from _predict_helpers import make_checkpoint
from beenet.models.googlenet import GoogLeNet
from beenet.models.trunk import (
    GOOGLENET_LAYERS,
    IMAGENET_CLASSES,
    IMAGENET_WEIGHTS_URL,
    GoogLeNetTrunk,
    _init_like_torchvision,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def _torchvision_net(aux_logits: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return tvm.googlenet(weights=None, aux_logits=aux_logits, init_weights=False, transform_input=False,
                         num_classes=1000)


def _informative(state: dict[str, torch.Tensor], seed: int = 3) -> dict[str, torch.Tensor]:
    """``state`` with BN statistics and affine parameters away from their neutral init, so that an
    eval-mode comparison exercises every BatchNorm buffer."""
    g = torch.Generator().manual_seed(seed)
    out = dict(state)
    for k, v in state.items():
        if k.endswith(("running_mean", "bn.bias")):
            out[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif k.endswith(("running_var", "bn.weight")):
            out[k] = torch.empty(v.shape).uniform_(0.5, 1.5, generator=g)
    return out


def _shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


@pytest.mark.parametrize("aux_logits", [True, False])
def test_names_and_shapes_are_torchvisions(aux_logits: bool) -> None:
    ours, theirs = GoogLeNet(num_classes=1000, aux_logits=aux_logits), _torchvision_net(aux_logits)
    assert _shapes(ours) == _shapes(theirs)  # every parameter and buffer, in the same order
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in theirs.named_buffers()]
    # The published weights' quirks: the "5x5" branch is a 3x3 kernel, the pools round up.
    assert tuple(ours.inception4d.branch3[1].conv.weight.shape) == (64, 32, 3, 3)
    assert ours.inception3a.branch2[1].bn.eps == 0.001
    pools = [m for m in ours.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 4 + 9 and all(p.ceil_mode for p in pools)
    assert repr(ours.inception3a.branch4[0]) == repr(theirs.inception3a.branch4[0])


def test_trunk_keys_are_torchvisions_kept_layers() -> None:
    """A checkpoint's trunk keys (``trunk.inception3a.branch2.1.conv.weight``, ...) are unchanged."""
    trunk = GoogLeNetTrunk(pretrained=False)
    theirs = _torchvision_net(aux_logits=False)
    kept = [(k, s) for k, s in _shapes(theirs) if k.split(".")[0] in GOOGLENET_LAYERS]
    assert _shapes(trunk) == kept
    assert "inception3a.branch2.1.conv.weight" in trunk.state_dict()
    assert "inception4d.branch4.1.bn.running_mean" in trunk.state_dict()


@pytest.mark.parametrize("size", [(224, 224), (97, 131)])  # odd sizes: every ceil_mode pool rounds up
def test_outputs_are_torchvisions_on_the_same_weights(size: tuple[int, int]) -> None:
    theirs = _torchvision_net(aux_logits=True).eval()
    state = _informative(theirs.state_dict())
    theirs.load_state_dict(state)
    ours = GoogLeNet(num_classes=1000, aux_logits=True).eval()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
        features = torch.randn(2, 512, 14, 14, generator=torch.Generator().manual_seed(6))
        torch.testing.assert_close(ours.aux1(features), theirs.aux1(features), rtol=0, atol=0)


@pytest.mark.parametrize("train", [False, True])
def test_trunk_is_torchvisions_net_cut_at_inception4d(train: bool) -> None:
    """The trunk = torchvision's GoogLeNet with ``transform_input`` up to ``inception4d``."""
    theirs = tvm.googlenet(weights=None, aux_logits=False, init_weights=False, transform_input=True)
    state = _informative(theirs.state_dict())
    theirs.load_state_dict(state)
    trunk = GoogLeNetTrunk(pretrained=False)
    trunk.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in GOOGLENET_LAYERS}, strict=True)
    theirs.train(train)
    trunk.train(train)
    x = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        scaled = x * trunk.input_scale + trunk.input_shift  # torchvision's re-scaling, up to rounding
        torch.testing.assert_close(scaled, theirs._transform_input(x), rtol=1e-6, atol=1e-6)
        want = scaled
        for name in GOOGLENET_LAYERS:
            want = getattr(theirs, name)(want)
        got = trunk(x)
    assert got.shape == (2, GoogLeNetTrunk.out_channels, 4, 5)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 11])
def test_seeded_random_trunk_is_bit_identical_to_the_torchvision_build(seed: int) -> None:
    """What main built through torchvision (``googlenet(weights=None, aux_logits=False,
    init_weights=False)`` + the init on the kept layers), value for value, and the global RNG left in
    the same state (so every head built after the trunk draws the same numbers too)."""
    torch.manual_seed(seed)
    reference = tvm.googlenet(weights=None, aux_logits=False, init_weights=False)
    _init_like_torchvision(nn.ModuleList(getattr(reference, name) for name in GOOGLENET_LAYERS))
    rng_after_reference = torch.get_rng_state()
    torch.manual_seed(seed)
    trunk = GoogLeNetTrunk(pretrained=False)
    assert torch.equal(torch.get_rng_state(), rng_after_reference)
    want = {k: v for k, v in reference.state_dict().items() if k.split(".")[0] in GOOGLENET_LAYERS}
    got = trunk.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert float(got["conv1.conv.weight"].std()) == pytest.approx(0.01, rel=0.1)  # the init did run


def test_meta_device_trunk_has_the_same_shapes() -> None:
    """The shapes-only build that checks a checkpoint (no values drawn on the meta device)."""
    with torch.device("meta"):
        meta = GoogLeNetTrunk(pretrained=False)
    assert meta.conv1.conv.weight.is_meta and meta.input_scale.is_meta
    assert _shapes(meta) == _shapes(GoogLeNetTrunk(pretrained=False))


def test_published_file_is_torchvisions() -> None:
    weights = GoogLeNet_Weights.IMAGENET1K_V1
    assert IMAGENET_WEIGHTS_URL == weights.url == "https://download.pytorch.org/models/googlenet-1378be20.pth"
    assert IMAGENET_CLASSES == len(weights.meta["categories"])


_CHILD = """
import json, sys
from beenet.models import ModelConfig, build_model
from beenet.inference.scoring import load_engine

build_model(ModelConfig())  # the default config: the ImageNet trunk, from the planted file
loaded = load_engine(sys.argv[1], "torch", "cpu")  # as 'beenet predict' loads its checkpoint
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "torchvision" or m == "torch._dynamo")))
"""


@pytest.mark.slow
def test_building_and_loading_a_model_does_not_import_torchvision(tmp_path: Path) -> None:
    """Nor ``torch._dynamo`` (what made torchvision slow to import, ~1.5 s): load_engine's check
    builds the model on the meta device, where any tensor op (an init draw, the trunk's input
    re-scaling) would import it."""
    ckpt = make_checkpoint(tmp_path / "model.pt")
    home = tmp_path / "torch_home"
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    # A file of the published name and layout (what load_published checks), made without torchvision.
    torch.save(GoogLeNet(num_classes=1000, aux_logits=True).state_dict(), checkpoints / "googlenet-1378be20.pth")
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TORCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ckpt)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
