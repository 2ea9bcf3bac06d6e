"""Protocols: official files, and the seeded clip-disjoint paper split written to and reused from disk."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bold_fixture import write_bold_fixture
from beenet.data.bold import BoLD, Instance
from beenet.data.splits import draw_paper_split, paper_split_path
from beenet.errors import BoLDFormatError


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_bold_fixture(tmp_path_factory.mktemp("bold") / "BOLD_public", num_frames=4,
                              width=32, height=32, clips_per_split={"train": 7, "val": 3, "test": 1})


@pytest.fixture
def fx(source, tmp_path):
    """A fresh copy of the fixture per test (split files are written into it)."""
    shutil.copytree(source.root, tmp_path / "BOLD_public")
    return dataclasses.replace(source, root=tmp_path / "BOLD_public")


def test_official_protocol_is_the_three_files(fx):
    bold = BoLD(fx.root)
    for split in ("train", "val", "test"):
        assert [i.key for i in bold.instances(split)] == fx.splits[split]
    assert not (fx.root / "splits").exists()


def test_paper_split_is_clip_disjoint_complete_and_written(fx):
    bold = BoLD(fx.root)
    parts = {s: bold.instances(s, protocol="paper") for s in ("train", "val", "test")}
    clips = {s: {i.clip for i in v} for s, v in parts.items()}
    assert not (clips["train"] & clips["val"] or clips["train"] & clips["test"] or clips["val"] & clips["test"])
    keys = [i.key for v in parts.values() for i in v]
    labelled = fx.splits["train"] + fx.splits["val"]
    assert sorted(keys) == sorted(labelled) and len(keys) == len(set(keys))
    assert [len(parts[s]) for s in ("train", "val", "test")] == [12, 2, 6]  # 20 instances, 60/10/30
    assert all(i.labelled for v in parts.values() for i in v)
    path = fx.root / "splits" / "paper-seed42.json"
    assert path.is_file() and paper_split_path(bold, 42) == path
    data = json.loads(path.read_text())
    assert data["seed"] == 42 and data["protocol"] == "paper"
    assert {s: sorted(c) for s, c in clips.items()} == data["clips"]


def test_paper_split_is_reproducible_and_seeded(fx, tmp_path):
    first = {s: [i.key for i in BoLD(fx.root).instances(s, protocol="paper")] for s in ("train", "val", "test")}
    (fx.root / "splits" / "paper-seed42.json").unlink()
    again = {s: [i.key for i in BoLD(fx.root).instances(s, protocol="paper")] for s in ("train", "val", "test")}
    assert first == again
    other = {s: [i.key for i in BoLD(fx.root).instances(s, protocol="paper", seed=7)] for s in ("train", "val", "test")}
    assert other != first and (fx.root / "splits" / "paper-seed7.json").is_file()


def test_paper_split_is_reused_from_disk(fx):
    BoLD(fx.root).instances("train", protocol="paper")
    path = fx.root / "splits" / "paper-seed42.json"
    data = json.loads(path.read_text())
    moved = data["clips"]["train"].pop(0)  # edit the file: a reader must follow it, not redraw
    data["clips"]["test"].append(moved)
    path.write_text(json.dumps(data))
    bold = BoLD(fx.root)
    assert moved in {i.clip for i in bold.instances("test", protocol="paper")}
    assert moved not in {i.clip for i in bold.instances("train", protocol="paper")}


def test_stale_split_file_says_delete_it(fx):
    BoLD(fx.root).instances("train", protocol="paper")
    val = fx.root / "annotations" / "val.csv"
    lines = val.read_text().splitlines(keepends=True)
    val.write_text("".join(lines[:-2]))  # the last clip of val.csv is gone
    with pytest.raises(BoLDFormatError, match=r"paper-seed42\.json.*no longer matches.*delete this file"):
        BoLD(fx.root).instances("val", protocol="paper")
    val.write_text("".join(lines[:-1]))  # one person of a clip is gone: same clips, other pairs
    with pytest.raises(BoLDFormatError, match="no longer matches"):
        BoLD(fx.root).instances("val", protocol="paper")
    (fx.root / "splits" / "paper-seed42.json").write_text("{not json")
    with pytest.raises(BoLDFormatError, match="unreadable split file.*delete"):
        BoLD(fx.root).instances("val", protocol="paper")


def test_read_only_root_falls_back_to_a_cache_dir(fx, tmp_path, monkeypatch):
    monkeypatch.delenv("BEENET_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (fx.root / "splits").write_text("")  # a file where the folder should be: the root cannot take it
    parts = BoLD(fx.root).instances("train", protocol="paper")
    written = list((tmp_path / "cache" / "beenet" / "splits").rglob("paper-seed42.json"))
    assert len(written) == 1
    assert [i.key for i in BoLD(fx.root).instances("train", protocol="paper")] == [i.key for i in parts]
    given_dir = tmp_path / "mine"
    BoLD(fx.root, splits_dir=given_dir).instances("val", protocol="paper", seed=3)
    assert (given_dir / "paper-seed3.json").is_file()


def _inst(clip: str, person: int) -> Instance:
    return Instance(clip, person, 0, 1, None, None, None, None, None, None, "x.csv", 1)


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=40), seed=st.integers(0, 2**32 - 1))
def test_draw_is_a_clip_partition(sizes, seed):
    insts = [_inst(f"003/x.mp4/{c:04d}.mp4", p) for c, n in enumerate(sizes) for p in range(n)]
    parts = draw_paper_split(insts, seed)
    all_clips = [c for p in ("train", "val", "test") for c in parts[p]]
    assert sorted(all_clips) == sorted({i.clip for i in insts}) and len(all_clips) == len(set(all_clips))
    if len(sizes) >= 3:
        assert all(parts[p] for p in ("train", "val", "test"))
    if len(sizes) >= 30:  # large enough for the fractions to show
        n_train = sum(sizes[int(c[-8:-4])] for c in parts["train"])
        assert abs(n_train / len(insts) - 0.6) < 0.15
    assert draw_paper_split(insts, seed) == parts


# ----------------------------------------------------------------- paper-video (docs/method.md 2.9)


def test_source_video_of_a_clip_path():
    from beenet.data.splits import source_video

    assert source_video("003/abc.mp4/0001.mp4") == "003/abc.mp4"
    assert source_video("clip.mp4") == "clip.mp4"


def test_paper_video_split_keeps_every_clip_of_a_source_video_in_one_part(fx):
    bold = BoLD(fx.root)
    parts = {s: bold.instances(s, protocol="paper-video") for s in ("train", "val", "test")}
    videos = {s: {i.clip.rsplit("/", 1)[0] for i in v} for s, v in parts.items()}
    assert not (videos["train"] & videos["val"] or videos["train"] & videos["test"] or videos["val"] & videos["test"])
    keys = sorted(i.key for v in parts.values() for i in v)
    assert keys == sorted(fx.splits["train"] + fx.splits["val"])
    path = fx.root / "splits" / "paper-video-seed42.json"
    data = json.loads(path.read_text())
    assert data["protocol"] == "paper-video" and data["unit"] == "video"
    # The clip-disjoint split is its own file; asking for it does not read the video one.
    assert paper_split_path(bold, 42, protocol="paper") != path
    bold.instances("train", protocol="paper")
    assert (fx.root / "splits" / "paper-seed42.json").is_file()
    # A split file written for another protocol is refused, naming the protocol.
    shutil.copy(fx.root / "splits" / "paper-seed42.json", path)
    with pytest.raises(BoLDFormatError, match="protocol 'paper', not 'paper-video'"):
        BoLD(fx.root).instances("train", protocol="paper-video")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=40), st.integers(0, 99))
def test_draw_paper_split_by_video_never_splits_a_video(pairs, seed):
    class _I:
        def __init__(self, video: int, clip: int) -> None:
            self.clip = f"003/v{video}.mp4/{clip:04d}.mp4"

    insts = [_I(v, c) for v, c in pairs]
    parts = draw_paper_split(insts, seed, group="video")
    owner: dict[str, str] = {}
    for part, clips in parts.items():
        for clip in clips:
            video = clip.rsplit("/", 1)[0]
            assert owner.setdefault(video, part) == part
    assert sorted(c for cs in parts.values() for c in cs) == sorted({i.clip for i in insts})


def test_protocol_names_have_one_owner():
    from beenet.choices import choices
    from beenet.data.splits import PROTOCOLS
    from beenet.run_config import RunSettings

    assert choices(RunSettings, "protocol") == PROTOCOLS
