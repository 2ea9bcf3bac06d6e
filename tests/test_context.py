"""Context experts (Places365, COCO detector), the 445-d context vector, and its on-disk cache.

Nothing here downloads: experts use ``weights=None`` (random init), and the weight-loading paths
read files written into ``tmp_path`` in the published formats, with downloading patched to fail.
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.error
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from beenet.context.base import (
    CONTEXT_DIM,
    CombinedContext,
    ContextSource,
    FrameExpertSource,
    evenly_spaced,
    join_context,
    normalise_scores,
    split_context,
)
from beenet.context.build import default_cache_dir, load_context, make_context_source
from beenet.context.cache import ContextCache
from beenet.context.config import ContextConfig
from beenet.context.coco import (
    COCO_UNUSED_IDS,
    CocoDetectorExpert,
    coco_label_map,
    objects_from_detections,
)
from beenet.context.places365 import Places365Expert, build_places365_net, clean_places365_state_dict
from beenet.errors import BeenetError, CheckpointError, ConfigError, DataNotFoundError
from beenet.labels import COCO_CLASSES, NUM_COCO, NUM_PLACES

CLIPS = ("003/aaaaaaaaaaa.mp4/0001.mp4", "003/aaaaaaaaaaa.mp4/0002.mp4", "003/bbbbbbbbbbb.mp4/0001.mp4")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bold(tmp_path_factory: pytest.TempPathFactory):
    """A BoLD directory with three tiny clips (64x48, 5 frames) listed in test_meta.csv."""
    from beenet.data.bold import BoLD
    from beenet.media.video_writer import write_video

    root = tmp_path_factory.mktemp("bold")
    (root / "annotations").mkdir()
    (root / "annotations" / "test_meta.csv").write_text("".join(f"{c},0,0,4\n" for c in CLIPS))
    rng = np.random.default_rng(0)
    for i, clip in enumerate(CLIPS):
        base = rng.integers(0, 255, size=(48, 64, 3))
        frames = [np.clip(base + 20 * t + 40 * i, 0, 255).astype(np.uint8) for t in range(5)]
        write_video(root / "videos" / clip, frames, fps=25.0)
    return BoLD(root)


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def frames(k: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(k, 48, 64, 3), dtype=np.uint8)


class CountingSource:
    """A context source with a fixed vector per clip that counts its calls (and can fail)."""

    name = "counting"

    def __init__(self, tag: str = "a", fail_on: str | None = None) -> None:
        self.tag = tag
        self.calls: list[str] = []
        self.fail_on = fail_on

    @property
    def fingerprint(self) -> str:
        return f"counting-{self.tag}"

    def label_clip(self, video: str, path) -> np.ndarray:
        if video == self.fail_on:
            raise RuntimeError(f"interrupted at {video}")
        self.calls.append(video)
        rng = np.random.default_rng(zlib.crc32(f"{self.tag}/{video}".encode()))
        return join_context(normalise_scores(rng.random(NUM_PLACES)), normalise_scores(rng.random(NUM_COCO)))


# ----------------------------------------------------------------------------- the vector


def test_split_join_roundtrip() -> None:
    assert CONTEXT_DIM == NUM_PLACES + NUM_COCO == 445
    rng = np.random.default_rng(1)
    p, o = rng.random((4, NUM_PLACES)), rng.random((4, NUM_COCO))
    v = join_context(p, o)
    assert v.shape == (4, CONTEXT_DIM) and v.dtype == np.float32
    p2, o2 = split_context(v)
    np.testing.assert_allclose(p2, p, rtol=1e-6)
    np.testing.assert_allclose(o2, o, rtol=1e-6)
    only_objects = join_context(None, o[0])
    assert only_objects.shape == (CONTEXT_DIM,) and not only_objects[:NUM_PLACES].any()
    t_places, t_objects = split_context(torch.from_numpy(v))
    assert t_places.shape == (4, NUM_PLACES) and t_objects.shape == (4, NUM_COCO)
    with pytest.raises(ValueError):
        split_context(np.zeros(444))


def test_normalise_scores_keeps_zero_rows() -> None:
    x = np.array([[0.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    out = normalise_scores(x)
    np.testing.assert_allclose(out, [[0, 0, 0], [0.25, 0.75, 0]])


@pytest.mark.parametrize("n,k,expected", [(10, 1, [5]), (9, 3, [1, 4, 7]), (2, 5, [0, 1]), (0, 3, [])])
def test_evenly_spaced(n: int, k: int, expected: list[int]) -> None:
    assert evenly_spaced(n, k) == expected


# ----------------------------------------------------------------------------- Places365


def test_places365_random_init_is_a_distribution_and_never_downloads(monkeypatch, bold) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("load_state_dict_from_url must not be called with weights=None")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    rng_before = torch.random.get_rng_state()
    expert = Places365Expert(weights=None, frames_per_clip=2, image_size=32)
    assert isinstance(expert, ContextSource)
    vec = expert.label_clip(CLIPS[0], bold.video_path(CLIPS[0]))
    assert torch.equal(torch.random.get_rng_state(), rng_before), "random init touched the global RNG"
    assert vec.shape == (CONTEXT_DIM,) and vec.dtype == np.float32
    places, objects = split_context(vec)
    assert places.min() >= 0 and places.sum() == pytest.approx(1.0, abs=1e-5)
    assert not objects.any()
    assert not any(p.requires_grad for p in expert.net.parameters()) and not expert.net.training
    # Same seed, same net; other seed, other net and other fingerprint.
    again = Places365Expert(weights=None, frames_per_clip=2, image_size=32)
    np.testing.assert_allclose(again.label_clip(CLIPS[0], bold.video_path(CLIPS[0])), vec, atol=1e-6)
    assert again.fingerprint == expert.fingerprint
    assert Places365Expert(weights=None, image_size=32, seed=1).fingerprint != expert.fingerprint
    assert Places365Expert(weights=None, image_size=64, frames_per_clip=2).fingerprint != expert.fingerprint


def _save_places365_checkpoint(path: Path, arch: str = "resnet18") -> dict[str, torch.Tensor]:
    """A checkpoint shaped like the Places365 project's (DataParallel keys, training extras)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        net = build_places365_net(arch)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 90, "arch": arch, "best_prec1": 54.7,
                "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return state


def test_places365_loads_published_format_from_cache_dir(tmp_path, no_download) -> None:
    state = _save_places365_checkpoint(tmp_path / "weights" / "resnet18_places365.pth.tar")
    expert = Places365Expert(weights="places365", cache_dir=tmp_path / "weights", image_size=32)
    loaded = expert.net.state_dict()
    for key in ("conv1.weight", "fc.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(loaded[key], state[key]), key
    assert expert.fingerprint != Places365Expert(weights=None, image_size=32).fingerprint
    # The same file given by path loads too, and its fingerprint follows the file's bytes.
    by_path = Places365Expert(weights=tmp_path / "weights" / "resnet18_places365.pth.tar", image_size=32)
    assert torch.equal(by_path.net.state_dict()["fc.bias"], state["fc.bias"])
    vec = by_path.label_frames(frames(1))
    assert split_context(vec)[0].sum() == pytest.approx(1.0, abs=1e-5)


def test_places365_download_failure_says_where_to_put_the_file(tmp_path, monkeypatch) -> None:
    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expert = Places365Expert(weights="places365", cache_dir=tmp_path, image_size=32)
    with pytest.raises(DataNotFoundError) as info:
        expert.net
    msg = str(info.value)
    assert "resnet18_places365.pth.tar" in msg and str(tmp_path) in msg and "places2.csail.mit.edu" in msg


def test_places365_corrupt_or_foreign_weights(tmp_path, no_download) -> None:
    (tmp_path / "resnet18_places365.pth.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="resnet18_places365.pth.tar"):
        Places365Expert(weights="places365", cache_dir=tmp_path).net
    other = tmp_path / "other" / "resnet18_places365.pth.tar"
    _save_places365_checkpoint(other)
    with pytest.raises(CheckpointError, match="resnet50"):
        Places365Expert(arch="resnet50", weights=other).net
    with pytest.raises(DataNotFoundError):
        Places365Expert(weights=tmp_path / "missing.pth.tar")
    with pytest.raises(ConfigError):
        Places365Expert(arch="vgg16", weights=None)


def test_clean_places365_state_dict_renames_old_keys() -> None:
    t = torch.zeros(1)
    ckpt = {"state_dict": {"module.features.denseblock1.denselayer1.norm.1.weight": t,
                           "module.features.conv0.weight": t, "module.classifier.bias": t}}
    assert set(clean_places365_state_dict(ckpt)) == {
        "features.denseblock1.denselayer1.norm1.weight", "features.conv0.weight", "classifier.bias"}
    assert set(clean_places365_state_dict({"fc.weight": t})) == {"fc.weight"}
    with pytest.raises(CheckpointError):
        clean_places365_state_dict({"state_dict": {"fc.weight": [1, 2]}})


# ----------------------------------------------------------------------------- COCO


def test_coco_label_map_is_a_bijection_onto_the_80_classes() -> None:
    from torchvision.models import get_model_weights

    categories = get_model_weights("fasterrcnn_mobilenet_v3_large_fpn").DEFAULT.meta["categories"]
    for table in (coco_label_map(categories), coco_label_map(None)):
        assert table.shape == (91,)
        mapped = table[table >= 0]
        assert sorted(mapped.tolist()) == list(range(NUM_COCO))
        unmapped = set(np.flatnonzero(table < 0).tolist())
        assert unmapped == {0} | set(COCO_UNUSED_IDS)
    table = coco_label_map(categories)
    np.testing.assert_array_equal(table, coco_label_map(None))
    for cid, name in enumerate(categories):
        if table[cid] >= 0:
            assert COCO_CLASSES[table[cid]] == name
    # An inconsistent category list falls back to the fixed table.
    np.testing.assert_array_equal(coco_label_map(["person"] * 91), coco_label_map(None))


def test_objects_from_detections_sums_confidence_over_threshold() -> None:
    table = coco_label_map(None)
    labels = np.array([1, 1, 3, 12, 90, 0, 2])  # person x2, car, N/A, toothbrush, background, bicycle
    scores = np.array([0.9, 0.5, 0.4, 0.99, 0.3, 0.8, 0.1])
    out = objects_from_detections(labels, scores, table, score_threshold=0.3)
    assert out.shape == (NUM_COCO,)
    assert out[COCO_CLASSES.index("person")] == pytest.approx(1.4)
    assert out[COCO_CLASSES.index("car")] == pytest.approx(0.4)
    assert out[COCO_CLASSES.index("toothbrush")] == pytest.approx(0.3)
    assert out[COCO_CLASSES.index("bicycle")] == 0.0
    assert out.sum() == pytest.approx(2.1)
    assert not objects_from_detections(labels, scores, table, score_threshold=0.999).any()


@pytest.fixture(scope="module")
def tiny_detector() -> CocoDetectorExpert:
    """A random detector at 64 px that keeps every detection (threshold 0), so some are found."""
    return CocoDetectorExpert(weights=None, score_threshold=0.0, frames_per_clip=2, min_size=64, max_size=64)


def test_coco_random_init_output_is_normalised(tiny_detector, bold, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("load_state_dict_from_url must not be called with weights=None")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    vec = tiny_detector.label_clip(CLIPS[1], bold.video_path(CLIPS[1]))
    assert vec.shape == (CONTEXT_DIM,) and vec.dtype == np.float32
    places, objects = split_context(vec)
    assert not places.any()
    assert objects.min() >= 0 and objects.sum() == pytest.approx(1.0, abs=1e-5)
    assert not tiny_detector.net.training
    assert not any(p.requires_grad for p in tiny_detector.net.parameters())


def test_coco_nothing_detected_gives_zeros(tiny_detector, monkeypatch) -> None:
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64), "scores": np.zeros(0)}
    monkeypatch.setattr(tiny_detector, "detect", lambda fr: [empty] * len(fr))
    assert not tiny_detector.label_frames(frames(2)).any()


def test_coco_loads_torchvision_weights_from_cache_dir(tmp_path, no_download) -> None:
    import os
    from urllib.parse import urlparse

    from torchvision.models import get_model_weights

    url = get_model_weights("fasterrcnn_mobilenet_v3_large_fpn").DEFAULT.url
    random_expert = CocoDetectorExpert(weights=None, min_size=64, max_size=64, seed=7)
    state = random_expert.net.state_dict()
    # torchvision's files come from FrozenBatchNorm2d: no num_batches_tracked entries.
    saved = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(saved, tmp_path / os.path.basename(urlparse(url).path))
    expert = CocoDetectorExpert(weights="DEFAULT", cache_dir=tmp_path, min_size=64, max_size=64)
    key = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(expert.net.state_dict()[key], state[key])
    assert "COCO_V1" in expert.weights_id and expert.fingerprint != random_expert.fingerprint
    with pytest.raises(ConfigError):
        CocoDetectorExpert(weights="NO_SUCH_WEIGHTS")
    with pytest.raises(ConfigError):
        CocoDetectorExpert(model="yolo", weights=None)


# ----------------------------------------------------------------------------- cache


def test_cache_computes_once_then_loads(tmp_path, bold) -> None:
    src = CountingSource()
    first = ContextCache(tmp_path).get_or_compute(src, bold.video_paths(list(CLIPS) + [CLIPS[0]]))
    assert sorted(src.calls) == sorted(CLIPS) and list(first) == list(CLIPS)
    again = CountingSource()
    second = ContextCache(tmp_path).get_or_compute(again, bold.video_paths(CLIPS))
    assert again.calls == []
    for v in CLIPS:
        np.testing.assert_array_equal(first[v], second[v])
        assert second[v].dtype == np.float32 and second[v].shape == (CONTEXT_DIM,)
    assert [p.name for p in tmp_path.iterdir()] == [ContextCache(tmp_path).path_for(src).name]


def test_cache_computes_only_missing_clips(tmp_path, bold) -> None:
    ContextCache(tmp_path).get_or_compute(CountingSource(), bold.video_paths(CLIPS[:2]))
    src = CountingSource()
    out = ContextCache(tmp_path).get_or_compute(src, bold.video_paths(CLIPS))
    assert src.calls == [CLIPS[2]] and set(out) == set(CLIPS)


def test_cache_changed_fingerprint_recomputes(tmp_path, bold) -> None:
    cache = ContextCache(tmp_path)
    a = cache.get_or_compute(CountingSource("a"), bold.video_paths(CLIPS))
    other = CountingSource("b")
    b = cache.get_or_compute(other, bold.video_paths(CLIPS))
    assert sorted(other.calls) == sorted(CLIPS)
    assert not np.array_equal(a[CLIPS[0]], b[CLIPS[0]])
    assert cache.path_for(CountingSource("a")) != cache.path_for(other)


def test_cache_corrupt_file_warns_and_recomputes(tmp_path, bold, caplog) -> None:
    cache = ContextCache(tmp_path)
    src = CountingSource()
    cache.get_or_compute(src, bold.video_paths(CLIPS))
    cache.path_for(src).write_bytes(b"PK\x03\x04 truncated")
    again = CountingSource()
    with caplog.at_level(logging.WARNING, logger="beenet.context.cache"):
        out = cache.get_or_compute(again, bold.video_paths(CLIPS))
    assert sorted(again.calls) == sorted(CLIPS) and set(out) == set(CLIPS)
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert cache.load(src).keys() == set(CLIPS)  # rewritten, readable again


def test_cache_interrupted_labelling_resumes(tmp_path, bold) -> None:
    cache = ContextCache(tmp_path, save_every=1)
    failing = CountingSource(fail_on=CLIPS[2])
    with pytest.raises(RuntimeError, match="interrupted"):
        cache.get_or_compute(failing, bold.video_paths(CLIPS))
    assert set(cache.load(failing)) == set(CLIPS[:2])
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    resumed = CountingSource()
    cache.get_or_compute(resumed, bold.video_paths(CLIPS))
    assert resumed.calls == [CLIPS[2]]


def test_cache_rejects_bad_vectors(tmp_path, bold) -> None:
    class Bad(CountingSource):
        def label_clip(self, video, path):
            return np.zeros(10, np.float32)

    with pytest.raises(BeenetError, match=CLIPS[0].replace(".", r"\.")):
        ContextCache(tmp_path).get_or_compute(Bad(), bold.video_paths(CLIPS[:1]))


def test_cache_counts_real_expert_calls(tmp_path, bold, monkeypatch) -> None:
    calls: list[int] = []
    original = Places365Expert.score_frames

    def counting(self, fr):
        calls.append(len(fr))
        return original(self, fr)

    monkeypatch.setattr(Places365Expert, "score_frames", counting)
    cfg = ContextConfig(source="places365", cache_dir=str(tmp_path), pretrained=False, frames_per_clip=1,
                        places_image_size=32)
    first = load_context(bold.video_paths(CLIPS), cfg)
    assert calls == [1, 1, 1]
    second = load_context(bold.video_paths(CLIPS), cfg)
    assert calls == [1, 1, 1]
    for v in CLIPS:
        np.testing.assert_array_equal(first[v], second[v])
    load_context(bold.video_paths(CLIPS), dataclasses.replace(cfg, places_image_size=48))
    assert len(calls) == 6, "a changed setting must change the fingerprint and recompute"


# ----------------------------------------------------------------------------- build


def test_experts_reuse_the_places_cache(tmp_path, bold, tiny_detector, monkeypatch) -> None:
    cfg = ContextConfig(source="places365", cache_dir=str(tmp_path), pretrained=False, frames_per_clip=1,
                        places_image_size=32)
    places_only = load_context(bold.video_paths(CLIPS), cfg)
    called: list[str] = []
    original = Places365Expert.score_frames
    monkeypatch.setattr(Places365Expert, "score_frames",
                        lambda self, fr: called.append("places") or original(self, fr))
    both = load_context(bold.video_paths(CLIPS), dataclasses.replace(
        cfg, source="experts", coco_score_threshold=0.0, coco_min_size=64, coco_max_size=64))
    assert called == []
    for v in CLIPS:
        p, o = split_context(both[v])
        np.testing.assert_array_equal(p, split_context(places_only[v])[0])
        assert o.sum() == pytest.approx(1.0, abs=1e-5)


def test_make_context_source_reads_the_config() -> None:
    src = make_context_source(ContextConfig(source="experts", pretrained=False, frames_per_clip=2,
                                            places_arch="resnet50", places_image_size=64,
                                            coco_score_threshold=0.5, coco_min_size=96, device="cpu"))
    assert isinstance(src, CombinedContext)
    assert src.places.arch == "resnet50" and src.places.image_size == 64 and src.places.weights is None
    assert src.objects.score_threshold == 0.5 and src.objects.min_size == 96 and src.objects.weights is None
    assert src.places.frames_per_clip == src.objects.frames_per_clip == 2
    assert src.fingerprint != make_context_source(ContextConfig(source="experts", pretrained=False)).fingerprint
    coco = make_context_source(ContextConfig(source="coco", pretrained=False, coco_score_threshold=0.2,
                                             places_arch="resnet50"))
    assert isinstance(coco, CocoDetectorExpert) and coco.score_threshold == 0.2
    places = make_context_source(ContextConfig(source="places365", pretrained=False, places_arch="resnet50"), "auto")
    assert isinstance(places, Places365Expert) and places.arch == "resnet50"
    assert places.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert isinstance(places, FrameExpertSource)


def test_make_context_source_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="nope"):
        make_context_source(ContextConfig(source="nope"))
    with pytest.raises(ConfigError, match="colour"):
        ContextConfig.from_dict({"source": "places365", "pretrained": False, "colour": "red"})
    with pytest.raises(ConfigError, match="arch"):
        ContextConfig.from_dict({"source": "experts", "pretrained": False, "arch": "resnet50"})  # no prefix
    with pytest.raises(ConfigError, match="pretrained"):
        ContextConfig(source="places365", pretrained=False, places_weights="places365")
    with pytest.raises(ConfigError, match="root"):
        make_context_source(ContextConfig(source="sidecar"))


def test_load_context_sidecar_needs_no_cache(tmp_path, bold) -> None:
    pytest.importorskip("beenet.context.sidecar")
    import json

    clips = {c: {"scene": "beach" if i else "kitchen", "objects": ["dog"] if i else []}
             for i, c in enumerate(CLIPS)}
    (Path(bold.root) / "synthetic_context.json").write_text(json.dumps(
        {"version": 1, "scenes": {"kitchen": 203, "beach": 48}, "objects": {"dog": 16}, "clips": clips}))
    try:
        cfg = ContextConfig(source="sidecar", cache_dir=str(tmp_path / "unused"), frames_per_clip=3, pretrained=True)
        out = load_context(bold.video_paths(CLIPS), cfg, root=bold.root)
    finally:
        (Path(bold.root) / "synthetic_context.json").unlink()
    assert set(out) == set(CLIPS) and not (tmp_path / "unused").exists()
    for v in CLIPS:
        assert out[v].shape == (CONTEXT_DIM,) and out[v].dtype == np.float32
    assert not np.array_equal(out[CLIPS[0]], out[CLIPS[1]])


def test_default_cache_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BEENET_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "context"
    monkeypatch.delenv("BEENET_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "beenet" / "context"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "beenet" / "context"


# ----------------------------------------------------------------------------- one entry point


def test_unknown_source_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="context.source: 'nope' is not one of 'none', 'sidecar', "
                                          "'places365', 'coco', 'experts'"):
        ContextConfig(source="nope")
    cfg = ContextConfig()
    cfg.source = "nope"  # an attribute write skips __post_init__; the entry point still says what is valid
    with pytest.raises(ConfigError, match="'nope' is not one of .*'experts'"):
        make_context_source(cfg)
    with pytest.raises(ConfigError, match="'none'.*no context source"):
        make_context_source(ContextConfig(source="none"))


def test_sidecar_needs_the_dataset_root(tmp_path) -> None:
    with pytest.raises(ConfigError, match="'sidecar' needs the dataset root"):
        make_context_source(ContextConfig(source="sidecar"), "cpu")
    with pytest.raises(DataNotFoundError, match="synthetic_context.json"):
        make_context_source(ContextConfig(source="sidecar"), "cpu", root=tmp_path)


def test_old_checkpoint_context_builds_the_experts_predict_built() -> None:
    """A checkpoint written before the expert settings were config fields (five keys) gives the
    experts the predictor used to build by hand: the same fingerprints, so the same cache files."""
    old = {"source": "experts", "cache_dir": "", "frames_per_clip": 3, "pretrained": False, "device": "auto"}
    src = make_context_source(ContextConfig.from_dict(old), "cpu")
    by_hand = CombinedContext(Places365Expert(weights=None, device="cpu", frames_per_clip=3),
                              CocoDetectorExpert(weights=None, device="cpu", frames_per_clip=3))
    assert src.fingerprint == by_hand.fingerprint
    published = make_context_source(ContextConfig.from_dict({**old, "pretrained": True}), "cpu")
    # The published weights are asked for (their identity is the file's sha256, known only once the
    # file is there: not computed here, which would need the network).
    assert published.places.weights == "places365" and published.objects.weights == "DEFAULT"
    assert by_hand.objects.weights is None


def test_train_eval_and_predict_use_the_same_experts(tmp_path) -> None:
    """One ContextConfig, three users: the cache training fills is the one evaluation reads, and
    ``beenet predict`` builds the experts of the checkpoint with the settings it was trained with."""
    from beenet.data.bold import BoLD
    from beenet.evaluation.evaluate import load_split_context
    from beenet.inference.predictor import Predictor
    from beenet.run_config import RunConfig
    from beenet.training.loop import train
    from train_helpers import tiny_config, write_tiny_synth

    data = write_tiny_synth(tmp_path / "synth", clips=10)
    cache = tmp_path / "cache"
    cfg = tiny_config("demo", ["optim.epochs=1", "model.fusion_context=input", "context.source=places365",
                               "context.frames_per_clip=2", "context.places_image_size=32",
                               f"context.cache_dir={cache}"])
    train(cfg, data, tmp_path / "run")
    ckpt = tmp_path / "run" / "best.pt"

    with Predictor(ckpt, device="cpu") as predictor:
        source = predictor.context
    assert isinstance(source, Places365Expert)
    assert (source.image_size, source.frames_per_clip, source.weights) == (32, 2, None)  # the run's settings
    assert source.fingerprint == make_context_source(cfg.context, "cpu", data).fingerprint
    cached = ContextCache(cache).path_for(source)
    assert cached.is_file(), "training filled the cache file of the fingerprint predict uses"

    from beenet.artifacts.checkpoint import load_checkpoint

    saved = RunConfig.from_dict(load_checkpoint(ckpt)["config"])
    assert saved.context == cfg.context
    bold = BoLD(data)
    stamp = cached.stat().st_mtime_ns
    ctx = load_split_context(saved, bold, bold.instances("val", protocol="paper", seed=42), "cpu")
    assert ctx and all(v.shape == (CONTEXT_DIM,) for v in ctx.values())
    assert cached.stat().st_mtime_ns == stamp, "evaluation found every clip in training's cache"
