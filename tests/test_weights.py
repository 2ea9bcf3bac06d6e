"""Every public weights path, offline, through the calls users make.

The files a download would produce are made here in the sources' formats and names, with random
values but the exact keys and shapes, and placed in a temporary ``$TORCH_HOME/hub/checkpoints``:

- ``googlenet-1378be20.pth``: torchvision's ImageNet GoogLeNet, a plain state dict of the whole
  network (``aux1``/``aux2`` heads and ``fc`` included), saved in torch's pre-1.6 (non-zip)
  format like the 2019 original;
- ``resnet18_places365.pth.tar``: the CSAIL Places365 checkpoint of ``train_placesCNN.py``,
  ``{"epoch", "arch", "state_dict", "best_prec1"}`` with ``module.``-prefixed keys (the network
  was wrapped in ``nn.DataParallel``), pre-1.6 format (2017);
- ``fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth`` (the COCO expert's default detector, zip
  format) and ``keypointrcnn_resnet50_fpn_coco-fc266e95.pth`` (Keypoint R-CNN, pre-1.6 format):
  torchvision detection state dicts, whose backbones are saved from ``FrozenBatchNorm2d`` layers
  (no ``num_batches_tracked``).

torchvision's own builders accept these files (strictly): the keys and shapes are the real
files'. No download is ever made: the download function is replaced by one that fails the test or
raises ``URLError`` like a machine without network.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torchvision.models import GoogLeNet_Weights
from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights, KeypointRCNN_ResNet50_FPN_Weights
from torchvision.ops import FrozenBatchNorm2d

from beenet.context.coco import CocoDetectorExpert
from beenet.context.places365 import PLACES365_URL, Places365Expert
from beenet.errors import CheckpointError, DataNotFoundError
from beenet.inference.pose import KeypointRCNNPose
from beenet.models import ModelConfig, build_model
from beenet.models.trunk import GOOGLENET_LAYERS, GoogLeNetTrunk
from beenet.artifacts.checkpoint import load_checkpoint, save_checkpoint
from beenet.weights import WeightsFileError, WeightsNotCachedError, file_sha256, pretrained_weights

GOOGLENET = GoogLeNet_Weights.IMAGENET1K_V1
DETECTOR = FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT  # CocoDetectorExpert's default model
KEYPOINTS = KeypointRCNN_ResNet50_FPN_Weights.DEFAULT


def _name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _random_like(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The same keys, shapes and dtypes with random values: weights on the scale of the init,
    batch-norm variances small (so that a wrong ``eps`` shows) and scales to match."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = torch.randint(0, 1000, value.shape, generator=g, dtype=value.dtype)
        elif key.endswith("running_var"):
            out[key] = torch.empty(value.shape).uniform_(1e-4, 1e-3, generator=g)
        elif key.endswith("running_mean"):
            out[key] = 0.01 * torch.randn(value.shape, generator=g)
        else:
            std = float(value.std()) if value.numel() > 1 and float(value.std()) > 0 else 0.02
            out[key] = std * torch.randn(value.shape, generator=g)
    for key in out:  # a BN scale on the scale of its sqrt(variance): activations stay O(1)
        var_key = key[: -len("weight")] + "running_var"
        if key.endswith(".weight") and var_key in out:
            out[key] = out[var_key].sqrt() * torch.empty(out[key].shape).uniform_(0.5, 1.5, generator=g)
    return out


def make_googlenet_file(folder: Path, seed: int = 1) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet GoogLeNet file: the whole net with aux heads, 1000 classes."""
    net = tvm.googlenet(weights=None, aux_logits=True, init_weights=False, num_classes=1000)
    state = _random_like(net.state_dict(), seed)
    assert any(k.startswith("aux1.") for k in state) and "fc.weight" in state
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / _name(GOOGLENET.url), _use_new_zipfile_serialization=False)
    return state


def make_places365_file(folder: Path, arch: str = "resnet18", seed: int = 2) -> dict[str, torch.Tensor]:
    """The CSAIL checkpoint: train_placesCNN.py's dict, DataParallel ('module.') keys."""
    net = getattr(tvm, arch)(weights=None, num_classes=365)
    state = _random_like(net.state_dict(), seed)
    ckpt = {"epoch": 90, "arch": arch, "state_dict": {f"module.{k}": v for k, v in state.items()},
            "best_prec1": 54.74}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, folder / f"{arch}_places365.pth.tar", _use_new_zipfile_serialization=False)
    return state


def make_detection_file(folder: Path, weights: Any, seed: int, zip_format: bool) -> dict[str, torch.Tensor]:
    """A torchvision detection file: the untrained net's keys without the backbone's BN counters
    (torchvision trains and saves these backbones with FrozenBatchNorm2d)."""
    kwargs = {"num_classes": len(weights.meta["categories"])}
    if "keypoint_names" in weights.meta:
        kwargs["num_keypoints"] = len(weights.meta["keypoint_names"])
    name = weights.__class__.__name__
    builder = {"FasterRCNN_MobileNet_V3_Large_FPN_Weights": "fasterrcnn_mobilenet_v3_large_fpn",
               "KeypointRCNN_ResNet50_FPN_Weights": "keypointrcnn_resnet50_fpn"}[name]
    net = tvm.get_model(builder, weights=None, weights_backbone=None, **kwargs)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = _random_like(state, seed)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / _name(weights.url), _use_new_zipfile_serialization=zip_format)
    return state


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A TORCH_HOME; the file fixtures below put each source's file into its hub/checkpoints."""
    home = tmp_path_factory.mktemp("torch_home")
    return {"home": home, "dir": home / "hub" / "checkpoints"}


@pytest.fixture(scope="module")
def googlenet_file(torch_home: dict[str, Any]) -> dict[str, torch.Tensor]:
    return make_googlenet_file(torch_home["dir"])


@pytest.fixture(scope="module")
def places365_file(torch_home: dict[str, Any]) -> dict[str, torch.Tensor]:
    return make_places365_file(torch_home["dir"])


@pytest.fixture(scope="module")
def detector_file(torch_home: dict[str, Any]) -> dict[str, torch.Tensor]:
    return make_detection_file(torch_home["dir"], DETECTOR, seed=3, zip_format=True)


@pytest.fixture(scope="module")
def keypoints_file(torch_home: dict[str, Any]) -> dict[str, torch.Tensor]:
    return make_detection_file(torch_home["dir"], KEYPOINTS, seed=4, zip_format=False)


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """The network is down: every download attempt is recorded and fails like it would offline."""
    calls: list[tuple[str, str, Any]] = []

    def offline(url: str, dst: str, hash_prefix: Any = None, progress: bool = True) -> None:
        calls.append((url, dst, hash_prefix))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return calls


@pytest.fixture
def cached(torch_home: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
           downloads: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """TORCH_HOME set to the folder of the file fixtures; any download attempt fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home["home"]))
    assert Path(torch.hub.get_dir()) == torch_home["home"] / "hub"
    yield torch_home
    assert downloads == [], "a cached file must not be downloaded again"


def _image(seed: int = 0, h: int = 72, w: int = 96) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- GoogLeNet trunk


def test_paper_model_loads_torchvisions_imagenet_file(
    cached: dict[str, Any], googlenet_file: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    model = build_model(ModelConfig(pretrained=True), seed=0)
    want = googlenet_file
    got = model.trunk.state_dict()
    kept = [k for k in want if k.split(".", 1)[0] in GOOGLENET_LAYERS]
    assert set(got) == set(kept), "the trunk keeps exactly the layers up to inception4d"
    for key in kept:
        assert torch.equal(got[key], want[key]), key
    assert not hasattr(model.trunk, "aux1") and not hasattr(model.trunk, "fc")
    # The record names the file and its bytes, and the checkpoint carries it.
    path = cached["dir"] / "googlenet-1378be20.pth"
    sha = file_sha256(path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pretrained_weights(model) == {"trunk": {"file": "googlenet-1378be20.pth", "url": GOOGLENET.url,
                                                   "sha256": sha}}
    save_checkpoint(tmp_path / "best.pt", model=model, config={"model": ModelConfig().to_dict()}, epoch=0)
    assert load_checkpoint(tmp_path / "best.pt")["pretrained_weights"]["trunk"]["sha256"] == sha


def test_trunk_matches_torchvisions_own_loading_of_the_same_file(cached: dict[str, Any], googlenet_file: Any) -> None:
    """torchvision's builder reads the cached file as it is (no re-hash of a cached file: the
    random bytes do not match the 1378be20 in its name) and its features equal the trunk's."""
    with pytest.warns(UserWarning, match="auxiliary heads"):  # aux_logits=True: torchvision warns
        reference = tvm.googlenet(weights=GOOGLENET, aux_logits=True).eval()
    assert not file_sha256(cached["dir"] / "googlenet-1378be20.pth").startswith("1378be20")
    trunk = GoogLeNetTrunk(pretrained=True).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = reference._transform_input(x)
        for name in GOOGLENET_LAYERS:
            y = getattr(reference, name)(y)
        torch.testing.assert_close(trunk(x), y)


def test_random_init_trunk_is_unchanged() -> None:
    """Values recorded from the trunk before the pretrained path was fixed (same seed, same numbers)."""
    torch.manual_seed(0)
    state = GoogLeNetTrunk(pretrained=False).state_dict()
    assert GoogLeNetTrunk(pretrained=False).weights_record is None
    assert float(state["conv1.conv.weight"].double().sum()) == pytest.approx(0.3720532208424743, abs=1e-9)
    assert float(state["inception4d.branch4.1.conv.weight"].double().abs().sum()) == pytest.approx(
        261.9483641212504, rel=1e-9)


def test_trunk_not_cached_and_offline_says_which_file_goes_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, downloads: list[tuple[str, str, Any]]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotCachedError) as info:
        GoogLeNetTrunk(pretrained=True)
    msg = str(info.value)
    folder = tmp_path / "hub" / "checkpoints"
    assert "googlenet-1378be20.pth" in msg and str(folder) in msg and GOOGLENET.url in msg
    assert "model.pretrained=false" in msg and "URLError" in msg
    assert isinstance(info.value, DataNotFoundError)
    # One attempt, to the published URL, with torchvision's hash check on the download.
    assert downloads == [(GOOGLENET.url, str(folder / "googlenet-1378be20.pth"), "1378be20")]


def test_trunk_file_present_but_unreadable_or_foreign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_home: dict[str, Any],
    googlenet_file: dict[str, torch.Tensor], downloads: list[tuple[str, str, Any]],
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    target = folder / "googlenet-1378be20.pth"
    good = (torch_home["dir"] / "googlenet-1378be20.pth").read_bytes()
    for bad in (good[: len(good) // 2], b"<html>503 Service Unavailable</html>"):  # truncated, garbage
        target.write_bytes(bad)
        with pytest.raises(WeightsFileError) as info:
            GoogLeNetTrunk(pretrained=True)
        msg = str(info.value)
        assert str(target) in msg and "cannot be read" in msg and f"delete {target}" in msg and GOOGLENET.url in msg
        assert not isinstance(info.value, DataNotFoundError)
    # Another network's weights under the right name: which keys, and what to do.
    torch.save(tvm.resnet18(weights=None).state_dict(), target)
    with pytest.raises(WeightsFileError) as info:
        GoogLeNetTrunk(pretrained=True)
    msg = str(info.value)
    assert str(target) in msg and "ImageNet GoogLeNet" in msg and "missing" in msg and "unexpected" in msg
    assert "conv1.conv.weight" in msg and "unexpected keys (conv1.weight" in msg and "delete" in msg
    # The GoogLeNet without its aux heads (what torchvision refuses to load its file into) is foreign too.
    no_aux = {k: v for k, v in googlenet_file.items() if not k.startswith("aux")}
    torch.save(no_aux, target)
    with pytest.raises(WeightsFileError, match="missing .* keys .*aux1"):
        GoogLeNetTrunk(pretrained=True)
    assert downloads == []


# ----------------------------------------------------------------------------- Places365


def test_places365_url_is_https() -> None:
    assert PLACES365_URL.startswith("https://places2.csail.mit.edu/")


def test_places365_loads_the_csail_checkpoint_from_torch_home(
    cached: dict[str, Any], places365_file: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    raw = torch.load(cached["dir"] / "resnet18_places365.pth.tar", weights_only=True)
    assert set(raw) == {"epoch", "arch", "state_dict", "best_prec1"} and raw["arch"] == "resnet18"
    assert all(k.startswith("module.") for k in raw["state_dict"])
    expert = Places365Expert(weights="places365", image_size=32)  # default cache: $TORCH_HOME
    loaded = expert.net.state_dict()
    for key, value in places365_file.items():
        assert torch.equal(loaded[key], value), key
    sha = file_sha256(cached["dir"] / "resnet18_places365.pth.tar")
    assert expert.describe()["weights"] == f"resnet18_places365.pth.tar:sha256={sha[:16]}"
    vec = expert.label_frames(np.random.default_rng(0).integers(0, 256, (2, 40, 48, 3), dtype=np.uint8))
    assert vec[:365].sum() == pytest.approx(1.0, abs=1e-5)
    # Other bytes under the same name: another fingerprint (cached labels are not reused).
    other = tmp_path / "other"
    make_places365_file(other, seed=9)
    assert Places365Expert(weights="places365", cache_dir=other, image_size=32).fingerprint != expert.fingerprint
    assert Places365Expert(weights="places365", image_size=32).fingerprint == expert.fingerprint


def test_places365_not_cached_offline_and_bad_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, downloads: list[tuple[str, str, Any]]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    expert = Places365Expert(weights="places365")  # constructing needs nothing
    with pytest.raises(WeightsNotCachedError) as info:
        expert.fingerprint  # the fingerprint is the file's hash: it needs the file
    msg = str(info.value)
    assert "resnet18_places365.pth.tar" in msg and str(folder) in msg
    assert "https://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar" in msg
    assert downloads[0][2] is None  # no hash in a CSAIL file name: nothing to check it against
    target = folder / "resnet18_places365.pth.tar"
    folder.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\x80\x02garbage")
    with pytest.raises(WeightsFileError, match=rf"{target}: cannot be read .* delete {target}"):
        Places365Expert(weights="places365").net
    make_places365_file(folder, arch="resnet50")  # a resnet50 file under the resnet18 name
    shutil.move(folder / "resnet50_places365.pth.tar", target)
    with pytest.raises(WeightsFileError) as info:
        Places365Expert(weights="places365").net
    msg = str(info.value)
    assert "Places365 resnet18" in msg and "shape mismatches" in msg and "delete" in msg
    assert isinstance(info.value, CheckpointError) and len(downloads) == 1


# ----------------------------------------------------------------------------- COCO detector


def test_coco_expert_loads_torchvisions_file_as_torchvision_does(
    cached: dict[str, Any], detector_file: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    expert = CocoDetectorExpert(min_size=96, max_size=96, score_threshold=0.0)
    assert expert.model_name == "fasterrcnn_mobilenet_v3_large_fpn" and expert._chosen == DETECTOR
    net = expert.net
    loaded = net.state_dict()
    for key, value in detector_file.items():
        assert torch.equal(loaded[key], value), key
    path = cached["dir"] / _name(DETECTOR.url)
    assert expert.weights_record.sha256 == file_sha256(path)
    assert f"sha256={file_sha256(path)[:16]}" in expert.weights_id and "COCO_V1" in expert.weights_id
    # torchvision's own builder: the same file loads strictly, with the same frozen batch norms
    # (eps 1e-5, where an untrained MobileNetV3 has 1e-3) and the same outputs.
    reference = tvm.get_model(expert.model_name, weights=DETECTOR, min_size=96, max_size=96,
                              box_score_thresh=0.0).eval()
    frozen = [m for m in net.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert frozen and all(m.eps == 1e-5 for m in frozen)
    assert [(type(m), getattr(m, "eps", None)) for m in net.modules()] == \
        [(type(m), getattr(m, "eps", None)) for m in reference.modules()]
    x = _image()
    with torch.no_grad():
        ours, theirs = net([x])[0], reference([x])[0]
        for level, feat in net.backbone(x[None]).items():
            torch.testing.assert_close(feat, reference.backbone(x[None])[level])
    for key in ("boxes", "scores", "labels"):
        torch.testing.assert_close(ours[key], theirs[key])
    # Other bytes, other fingerprint.
    other = tmp_path / "other"
    make_detection_file(other, DETECTOR, seed=11, zip_format=True)
    assert CocoDetectorExpert(cache_dir=other).fingerprint != expert.fingerprint


def test_coco_not_cached_offline_and_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, downloads: list[tuple[str, str, Any]]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    with pytest.raises(WeightsNotCachedError) as info:
        CocoDetectorExpert(min_size=64, max_size=64).net
    msg = str(info.value)
    assert _name(DETECTOR.url) in msg and str(folder) in msg and DETECTOR.url in msg
    assert downloads[-1][2] == "fb6a3cc7"
    (folder / _name(DETECTOR.url)).write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(WeightsFileError, match="cannot be read .* delete"):
        CocoDetectorExpert(min_size=64, max_size=64).net
    torch.save({"backbone.body.0.weight": torch.zeros(3)}, folder / _name(DETECTOR.url))
    with pytest.raises(WeightsFileError, match="missing .* keys"):
        CocoDetectorExpert(min_size=64, max_size=64).net


# ----------------------------------------------------------------------------- Keypoint R-CNN


@pytest.mark.slow  # a 236 MB file, read twice
def test_keypoint_rcnn_loads_torchvisions_file_as_torchvision_does(
    cached: dict[str, Any], keypoints_file: dict[str, torch.Tensor]
) -> None:
    pose = KeypointRCNNPose(weights="DEFAULT", max_size=96, score_threshold=0.0)
    loaded = pose.model.state_dict()
    for key, value in keypoints_file.items():
        assert torch.equal(loaded[key], value), key
    path = cached["dir"] / _name(KEYPOINTS.url)
    assert pose.weights_record.file == "keypointrcnn_resnet50_fpn_coco-fc266e95.pth"
    assert pose.weights_record.sha256 == file_sha256(path)
    reference = tvm.detection.keypointrcnn_resnet50_fpn(weights=KEYPOINTS, min_size=96, max_size=96).eval()
    assert [getattr(m, "eps", None) for m in pose.model.modules() if isinstance(m, FrozenBatchNorm2d)] == \
        [m.eps for m in reference.modules() if isinstance(m, FrozenBatchNorm2d)]
    x = _image(1)
    with torch.no_grad():
        for level, feat in pose.model.backbone(x[None]).items():
            torch.testing.assert_close(feat, reference.backbone(x[None])[level])
    dets = pose(np.asarray(x.permute(1, 2, 0) * 255, dtype=np.uint8))
    assert all(d.keypoints.shape == (18, 3) for d in dets)


def test_keypoint_rcnn_not_cached_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, downloads: list[tuple[str, str, Any]]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotCachedError) as info:
        KeypointRCNNPose(weights="DEFAULT", max_size=96)
    msg = str(info.value)
    assert "keypointrcnn_resnet50_fpn_coco-fc266e95.pth" in msg and KEYPOINTS.url in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg and "--pose mediapipe" in msg


# ----------------------------------------------------------------------------- the paper preset, end to end


@pytest.mark.slow
def test_paper_preset_trains_resumes_and_evaluates_offline_from_torch_home(
    cached: dict[str, Any], googlenet_file: Any, places365_file: Any, detector_file: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9's first 'done when': with the published files in TORCH_HOME and no network,
    ``beenet train --config paper`` (pretrained trunk, Places365 + COCO experts) trains on a
    BoLD-layout dataset, a resumed run keeps the record of the weights it started from, and
    ``beenet eval`` scores the checkpoint."""
    import json

    from beenet.cli import main
    from train_helpers import TINY, restore_root_logging, write_tiny_synth

    logs = restore_root_logging()
    next(logs)
    try:
        data = write_tiny_synth(tmp_path / "bold", clips=12)
        sets = [s for s in TINY if not s.startswith(("model.pretrained", "context.pretrained", "optim.epochs"))]
        sets += ["context.frames_per_clip=1", "context.places_image_size=64", "context.coco_min_size=64",
                 "context.coco_max_size=96", f"context.cache_dir={tmp_path / 'cache'}"]
        args = [a for s in sets for a in ("--set", s)]
        run = tmp_path / "run"
        assert main(["train", "--data", str(data), "--out", str(run), "--config", "paper", "--epochs", "1", *args]) == 0
        trunk_sha = file_sha256(cached["dir"] / _name(GOOGLENET.url))
        for name in ("best.pt", "last.pt"):
            ckpt = load_checkpoint(run / name)
            assert ckpt["config"]["model"]["pretrained"] is True
            assert ckpt["pretrained_weights"]["trunk"]["sha256"] == trunk_sha, name
        # The experts' cache files are named by fingerprints that hold the weights files' sha256.
        assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2

        assert main(["train", "--data", str(data), "--out", str(run), "--config", "paper", "--epochs", "2",
                     *args, "--resume"]) == 0
        resumed = load_checkpoint(run / "last.pt")
        assert resumed["epoch"] == 1
        assert resumed["pretrained_weights"]["trunk"]["sha256"] == trunk_sha

        assert main(["eval", "--data", str(data), "--checkpoint", str(run / "best.pt"), "--split", "val",
                     "--protocol", "paper", "--device", "cpu", "--out", str(tmp_path / "ev")]) == 0
        scores = json.loads((tmp_path / "ev" / "metrics.json").read_text())
        assert scores["n"] > 0 and "ERS" in scores
    finally:
        next(logs, None)
