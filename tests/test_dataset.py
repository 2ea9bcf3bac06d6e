"""BoLDDataset: the sample dict of design.md, the right frames, reproducible random draws."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bold_fixture import index_of_frame, write_bold_fixture
from beenet.media import video as video_module
from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset, DataConfig, collate, spread
from beenet.media.transforms import IMAGENET_MEAN, IMAGENET_STD
from beenet.errors import ConfigError, DataNotFoundError

S = 32


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_bold_fixture(tmp_path_factory.mktemp("bold") / "BOLD_public", num_frames=14,
                              clips_per_split={"train": 2, "val": 1, "test": 1})


@pytest.fixture(scope="module")
def bold(fx):
    return BoLD(fx.root)


def frame_index(frames: torch.Tensor) -> list[int]:
    """Read the index each frame of ``[T, 3, S, S]`` encodes (uint8 as shipped, or float normalised)."""
    if frames.dtype == torch.uint8:
        return [index_of_frame(f) for f in frames.permute(0, 2, 3, 1).numpy()]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = ((frames * std + mean) * 255).clamp(0, 255).permute(0, 2, 3, 1).numpy()
    return [index_of_frame(f) for f in rgb]


def cfg(**kw) -> DataConfig:
    return DataConfig(**{"image_size": S, "crop_size": 16, "skeleton_frames": 8, **kw})


def test_defaults_and_validation():
    c = DataConfig()
    assert (c.sampling, c.num_frames, c.image_size, c.body_crop, c.crop_size, c.skeleton,
            c.skeleton_frames, c.box_margin) == ("still", 8, 224, False, 112, False, 32, 0.15)
    with pytest.raises(ConfigError, match="sampling"):
        DataConfig(sampling="dense")
    with pytest.raises(ConfigError, match="num_frames"):
        DataConfig(num_frames=0)
    with pytest.raises(ConfigError, match="box_margin"):
        DataConfig(box_margin=-1)


def test_still_eval_takes_the_middle_present_frame(fx, bold):
    ds = BoLDDataset(bold, "train", cfg(), train=False)
    assert len(ds) == len(fx.splits["train"])
    for i, inst in enumerate(ds.instances):
        s = ds[i]
        assert s["frames"].shape == (1, 3, S, S) and s["frames"].dtype == torch.uint8
        assert s["frame_mask"].tolist() == [True]
        present = fx.present[inst.key]
        assert frame_index(s["frames"]) == [int(present[len(present) // 2])]
        cats, vad = fx.labels[inst.key]
        np.testing.assert_allclose(s["categories"].numpy(), cats, atol=1e-6)
        np.testing.assert_allclose(s["vad"].numpy(), vad, atol=1e-6)
        assert s["labelled"] is True and s["index"] == i
        assert set(s) == {"frames", "frame_mask", "categories", "vad", "labelled", "index"}


def test_still_train_draws_are_random_reproducible_and_present(fx, bold):
    ds = BoLDDataset(bold, "train", cfg(), train=True, seed=5)
    present = set(fx.present[ds.instances[0].key].tolist())
    seen = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        seen.append(frame_index(ds[0]["frames"])[0])
    assert set(seen) <= present and len(set(seen)) >= 3
    again = BoLDDataset(bold, "train", cfg(), train=True, seed=5)
    again.set_epoch(4)
    assert frame_index(again[0]["frames"]) == [seen[4]]  # resumable: same (seed, epoch, index)
    other = BoLDDataset(bold, "train", cfg(), train=True, seed=6)
    draws = []
    for epoch in range(6):
        other.set_epoch(epoch)
        draws.append(frame_index(other[0]["frames"])[0])
    assert draws != seen


def test_stills_per_instance_draws_k_stills_of_each_instance_per_epoch(fx, bold):
    """data.stills_per_instance=k: k x N training samples per epoch, index i is instance i mod N
    with its own random still; evaluation keeps one sample (the middle still) per instance."""
    k = 4
    ds = BoLDDataset(bold, "train", cfg(stills_per_instance=k), train=True, seed=5)
    n = len(ds.instances)
    assert len(ds) == k * n
    frames = [frame_index(ds[j * n]["frames"])[0] for j in range(k)]  # instance 0, k draws
    assert set(frames) <= set(fx.present[ds.instances[0].key].tolist()) and len(set(frames)) >= 2
    cats, _ = fx.labels[ds.instances[0].key]
    np.testing.assert_allclose(ds[n]["categories"].numpy(), cats, atol=1e-6)
    one = BoLDDataset(bold, "train", cfg(), train=True, seed=5)
    assert len(one) == n and frame_index(one[0]["frames"]) == frame_index(ds[0]["frames"])  # k=1: as before
    assert len(BoLDDataset(bold, "train", cfg(stills_per_instance=k), train=False)) == n
    with pytest.raises(ConfigError, match="stills_per_instance"):
        DataConfig(stills_per_instance=0)


def test_eval_stills_scores_k_evenly_spaced_stills_per_instance(fx, bold):
    """data.eval_stills=k (frame-level scoring): k x N evaluation samples, sample j N + i is the j-th
    of k evenly spaced present stills of instance i; frame_level repeats the targets to match."""
    from beenet.data.dataset import frame_level

    k = 3
    ds = BoLDDataset(bold, "train", cfg(eval_stills=k), train=False)
    n = len(ds.instances)
    assert len(ds) == k * n
    for i, inst in enumerate(ds.instances):
        present = fx.present[inst.key]
        got = [frame_index(ds[j * n + i]["frames"])[0] for j in range(k)]
        assert got == spread(present, k, None).tolist() and len(set(got)) == k
    assert len(BoLDDataset(bold, "train", cfg(eval_stills=k, sampling="uniform", num_frames=2), train=False)) == n
    t = np.arange(2 * 26).reshape(2, 26)
    assert frame_level(t, 2) is not None and np.array_equal(frame_level(t, 6), np.concatenate([t, t, t]))
    with pytest.raises(ValueError, match="not a multiple"):
        frame_level(t, 5)


def test_uniform_sampling_spreads_over_present_frames(fx, bold):
    ds = BoLDDataset(bold, "train", cfg(sampling="uniform", num_frames=4), train=False)
    s = ds[0]  # person 0: present in every frame but 3, 8, 13
    assert s["frames"].shape == (4, 3, S, S) and s["frame_mask"].all()
    present = fx.present[ds.instances[0].key]
    assert frame_index(s["frames"]) == [int(x) for x in spread(present, 4, None)] == [1, 5, 7, 11]
    train = BoLDDataset(bold, "train", cfg(sampling="uniform", num_frames=4), train=True)
    picked = frame_index(train[0]["frames"])
    assert picked == sorted(picked) and set(picked) <= set(present.tolist())


def test_uniform_pads_when_the_person_has_few_frames(fx, bold):
    ds = BoLDDataset(bold, "train", cfg(sampling="uniform", num_frames=16), train=False)
    s = ds[1]  # person 1: frames 2..11, 10 frames
    assert s["frames"].shape == (16, 3, S, S)
    assert s["frame_mask"].tolist() == [True] * 10 + [False] * 6
    assert frame_index(s["frames"][:10]) == list(range(2, 12))
    assert (s["frames"][10:] == 0).all()


def test_only_sampled_frames_are_decoded(bold, monkeypatch):
    asked = []
    real = video_module.VideoReader.read

    def spy(self, indices):
        asked.append(list(np.asarray(indices).tolist()))
        return real(self, indices)

    monkeypatch.setattr(video_module.VideoReader, "read", spy)
    BoLDDataset(bold, "train", cfg(sampling="uniform", num_frames=3), train=False)[0]
    assert asked == [[1, 6, 11]]


def test_crops_and_skeleton(fx, bold):
    c = cfg(sampling="uniform", num_frames=4, body_crop=True, skeleton=True)
    s = BoLDDataset(bold, "train", c, train=False)[0]
    assert s["crops"].shape == (4, 3, 16, 16) and torch.isfinite(s["crops"]).all()
    assert s["skeleton"].shape == (8, 18, 3) and s["skeleton_mask"].shape == (8, 18)
    assert s["skeleton_mask"].dtype == torch.bool
    m = s["skeleton_mask"]
    assert not m[:, 16:].any()  # (0,0,0) and low-confidence joints
    assert m[:, :16].sum() > 0 and (s["skeleton"][~m] == 0).all()
    # Skeleton frames span first..last detection, so frames without a row are masked out.
    missing_rows = ~m.any(1)
    assert missing_rows.any()
    still = BoLDDataset(bold, "train", cfg(body_crop=True, skeleton=True), train=True)[1]
    assert still["crops"].shape == (1, 3, 16, 16) and still["skeleton"].shape == (8, 18, 3)


def test_no_joints_file_falls_back_to_whole_clip(fx, tmp_path):
    root = tmp_path / "BOLD_public"
    shutil.copytree(fx.root, root)
    shutil.rmtree(root / "joints")
    ds = BoLDDataset(BoLD(root), "val", cfg(sampling="uniform", num_frames=7, body_crop=True, skeleton=True),
                     train=False)
    s = ds[0]
    assert frame_index(s["frames"]) == [1, 3, 5, 7, 9, 11, 13]  # whole clip of 14 frames
    assert s["crops"].shape == (7, 3, 16, 16)
    assert not s["skeleton_mask"].any() and (s["skeleton"] == 0).all()


def test_missing_video_is_named(fx, tmp_path):
    root = tmp_path / "BOLD_public"
    shutil.copytree(fx.root, root)
    bold = BoLD(root)
    inst = bold.instances("val")[0]
    bold.video_path(inst.video).unlink()
    with pytest.raises(DataNotFoundError, match=inst.video.replace(".", r"\.")):
        BoLDDataset(bold, "val", cfg(), train=False)[0]


def test_test_rows_and_context(fx, bold):
    ctx = {v: np.r_[np.full(365, 1 / 365), np.zeros(80)].astype(np.float32) for v in fx.clips("test")}
    ds = BoLDDataset(bold, "test", cfg(), train=False, context=ctx)
    s = ds[0]
    assert s["labelled"] is False and (s["categories"] == 0).all() and s["categories"].shape == (26,)
    assert (s["vad"] == 0).all() and s["vad"].shape == (3,)
    assert s["context"].shape == (445,) and s["context"].dtype == torch.float32
    with pytest.raises(DataNotFoundError, match="no context vector"):
        BoLDDataset(bold, "val", cfg(), train=False, context=ctx)[0]
    bad = {v: np.zeros(10) for v in fx.clips("test")}
    with pytest.raises(ConfigError, match="445"):
        BoLDDataset(bold, "test", cfg(), train=False, context=bad)[0]


def test_collate_and_dataloader(fx, bold):
    c = cfg(sampling="uniform", num_frames=3, body_crop=True, skeleton=True)
    ds = BoLDDataset(bold, bold.instances("train"), c, train=True)
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["frames"].shape == (3, 3, 3, S, S) and batch["crops"].shape == (3, 3, 3, 16, 16)
    assert batch["skeleton"].shape == (3, 8, 18, 3) and batch["skeleton_mask"].shape == (3, 8, 18)
    assert batch["labelled"].dtype == torch.bool and batch["labelled"].all()
    assert batch["index"].tolist() == [0, 1, 2] and batch["categories"].shape == (3, 26)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate)
    shapes = [b["frames"].shape[0] for b in loader]
    assert shapes == [2, 2]
    with pytest.raises(ValueError, match="keys"):
        collate([ds[0], {"frames": ds[0]["frames"]}])


def test_sample_is_independent_of_order_and_workers(bold):
    c = cfg(sampling="uniform", num_frames=3, skeleton=True)
    a = BoLDDataset(bold, "train", c, train=True, seed=1)
    b = BoLDDataset(bold, "train", c, train=True, seed=1)
    a.set_epoch(2), b.set_epoch(2)
    late = b[3]
    _ = [a[i] for i in range(3)]
    torch.testing.assert_close(a[3]["frames"], late["frames"])
    torch.testing.assert_close(a[3]["skeleton"], late["skeleton"])
    in_process = collate([a[i] for i in range(len(a))])
    loader = torch.utils.data.DataLoader(a, batch_size=2, num_workers=2, collate_fn=collate)
    batches = list(loader)
    torch.testing.assert_close(torch.cat([b["frames"] for b in batches]), in_process["frames"])
    torch.testing.assert_close(torch.cat([b["skeleton"] for b in batches]), in_process["skeleton"])


def test_spread():
    cand = np.arange(10, 20)
    assert spread(cand, 20, None).tolist() == cand.tolist()
    assert spread(cand, 2, None).tolist() == [12, 17]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        got = spread(cand, 3, g)
        assert len(set(got.tolist())) == 3 and got.tolist() == sorted(got.tolist())
        assert 10 <= got[0] <= 13 and 13 <= got[1] <= 16 and 16 <= got[2] <= 19


def test_dataclass_replace_keeps_validation():
    with pytest.raises(ConfigError):
        dataclasses.replace(DataConfig(), image_size=0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), count=st.integers(1, 40), seed=st.integers(0, 2**31), train=st.booleans())
def test_spread_picks_distinct_increasing_candidates(n, count, seed, train):
    cand = np.arange(n) * 3 + 7
    g = torch.Generator().manual_seed(seed) if train else None
    got = spread(cand, count, g).tolist()
    assert len(got) == min(n, count) and got == sorted(set(got)) and set(got) <= set(cand.tolist())


def test_available_instances_leaves_out_missing_files(fx, tmp_path, caplog):
    from beenet.data.dataset import available_instances

    root = tmp_path / "BOLD_public"
    shutil.copytree(fx.root, root)
    bold = BoLD(root)
    insts = bold.instances("train")
    assert available_instances(bold, insts) == insts
    bold.video_path(insts[0].video).unlink()
    bold.joints_path(insts[2].video).unlink()
    # the first clip (persons 0 and 1) has no video any more
    assert [i.key for i in available_instances(bold, insts)] == [i.key for i in insts[2:]]
    assert available_instances(bold, insts, need_joints=True) == []
    assert "left out" in caplog.text


@settings(max_examples=40, deadline=None)
@given(
    box=st.tuples(st.floats(-30, 90), st.floats(-30, 70), st.floats(1, 120), st.floats(1, 90)),
    seed=st.integers(0, 2**31),
)
def test_crop_window_gives_the_same_crop(box, seed):
    from beenet.data.dataset import crop_window
    from beenet.media.transforms import crop_to_tensor

    frame = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    window, local = crop_window(frame, box)
    torch.testing.assert_close(crop_to_tensor(window[None], local, 16), crop_to_tensor(frame[None], box, 16),
                               rtol=0, atol=0)


def test_resize_uint8_is_what_frames_to_tensor_does():
    """Training, evaluation and predict all resize through resize_uint8: same pixels everywhere."""
    from beenet.media.transforms import frames_to_tensor, resize_uint8

    frames = np.random.default_rng(0).integers(0, 256, (2, 72, 96, 3), dtype=np.uint8)
    small = resize_uint8(frames, 24)
    assert tuple(small.shape) == (2, 24, 24, 3) and small.dtype == torch.uint8
    torch.testing.assert_close(frames_to_tensor(small, 24), frames_to_tensor(frames, 24), rtol=0, atol=0)
    assert resize_uint8(small, 24) is small


@pytest.mark.parametrize("sampling, T", [("still", 1), ("uniform", 16)])
def test_uint8_batches_normalised_on_the_device_equal_the_old_float_path(bold, sampling, T):
    """The dataset ships uint8; normalize_uint8 (what the model runs first) must give, bit for bit,
    what the worker used to ship: frames_to_tensor of the same decoded frames, zero padding after
    the real frames (T=16 > the 14 frames of a clip: padded)."""
    from beenet.data.dataset import candidate_frames
    from beenet.media.transforms import frames_to_tensor, normalize_uint8

    ds = BoLDDataset(bold, "train", cfg(sampling=sampling, num_frames=T), train=True, seed=5)
    ds.set_epoch(2)
    samples = [ds[i] for i in range(len(ds))]
    batch = collate(samples)
    assert batch["frames"].dtype == torch.uint8
    new = normalize_uint8(batch["frames"], batch["frame_mask"])
    old = torch.zeros(len(ds), T, 3, S, S)
    for i, inst in enumerate(ds.instances):  # the old float path, from the same source and draws
        with ds.frame_source.open(bold, inst.video) as clip:
            joints = ds._joints(inst, clip.num_frames)
            idx = ds._frame_indices(candidate_frames(joints, clip.num_frames), ds.generator(i))
            old[i, : len(idx)] = frames_to_tensor(clip.frames(idx, S), S)
    assert new.dtype == torch.float32 and torch.equal(new, old)
    assert (T == 1) or not batch["frame_mask"].all()  # the uniform case does pad
    assert all(int(s["replaced"]) == 0 for s in samples)


def test_joints_are_read_once_per_process(bold, monkeypatch):
    """A person's joints are loaded once, then served from the process's bounded cache."""
    import beenet.data.dataset as dataset_module

    calls = []
    real = dataset_module.load_person_joints
    monkeypatch.setattr(dataset_module, "load_person_joints", lambda *a, **k: calls.append(a) or real(*a, **k))
    ds = BoLDDataset(bold, "train", cfg(), train=True)
    for epoch in range(3):
        ds.set_epoch(epoch)
        first = [ds[i]["frames"] for i in range(len(ds))]
    assert len(calls) == len(ds)
    fresh = BoLDDataset(bold, "train", cfg(), train=True)
    fresh.set_epoch(2)
    assert all(torch.equal(a, fresh[i]["frames"]) for i, a in enumerate(first))  # same draws as uncached


@pytest.mark.parametrize("storage", ["jpeg", "raw"])
def test_cached_frames_decode_into_planes_as_decode_frame_does(storage):
    """The prepared cache decodes straight into channels-first planes: the same pixels as
    decode_frame (the old worker path), so the frames a worker ships are unchanged."""
    from beenet.data.prepared.format import decode_frame, decode_planes, encode_frame

    frame = np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    data = encode_frame(frame, storage)
    planes = np.empty((3, 40, 40), dtype=np.uint8)
    decode_planes(data, storage, 40, planes)
    assert np.array_equal(planes.transpose(1, 2, 0), decode_frame(data, storage, 40))
