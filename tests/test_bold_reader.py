"""The annotation reader and the BoLD layout, on fixtures written exactly like the release."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bold_fixture import write_bold_fixture
from beenet.data.bold import NUM_COLUMNS, BoLD, read_annotations
from beenet.errors import BoLDFormatError, ConfigError, DataNotFoundError
from beenet.labels import NUM_CATEGORIES

VIDEO = "003/IzvOYVMltkI.mp4/0114.mp4"


def good_row(video: str = VIDEO, person: int = 0, cats: list[float] | None = None) -> list[str]:
    cats = cats if cats is not None else [0.25] * NUM_CATEGORIES
    return [video, str(person), "1200", "1350", *map(str, cats), "5.5", "3", "7.25", "1", "2", "0", "0.8"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return write_bold_fixture(tmp_path_factory.mktemp("bold") / "BOLD_public")


def test_row_is_37_columns():
    assert len(good_row()) == NUM_COLUMNS == 37


def test_reads_the_release_layout(fixture_dir):
    bold = BoLD(fixture_dir.root)
    for split in ("train", "val", "test"):
        insts = bold.instances(split)
        assert [i.key for i in insts] == fixture_dir.splits[split]
        for inst in insts:
            assert bold.video_path(inst.video).is_file()
            assert bold.joints_path(inst.video).is_file()
            assert inst.video.startswith("003/") and ".mp4/" in inst.video
    train = bold.instances("train")
    for inst in train:
        cats, vad = fixture_dir.labels[inst.key]
        assert inst.categories.dtype == np.float32 and inst.categories.shape == (26,)
        np.testing.assert_allclose(inst.categories, cats, atol=1e-6)
        np.testing.assert_allclose(inst.vad, vad, atol=1e-6)
        assert inst.labelled and inst.confidence is not None and inst.gender in (0.0, 1.0)
    assert [i.line for i in train] == list(range(1, len(train) + 1))
    assert train[0].source.endswith("train.csv")


def test_test_meta_with_four_columns_is_unlabelled(fixture_dir):
    test = BoLD(fixture_dir.root).instances("test")
    assert test and all(not i.labelled and i.categories is None and i.vad is None for i in test)
    with open(fixture_dir.root / "annotations" / "test_meta.csv") as fh:
        assert all(len(row) == 4 for row in csv.reader(fh))


def test_joints_path_changes_only_the_file_suffix(fixture_dir):
    bold = BoLD(fixture_dir.root)
    assert bold.joints_path(VIDEO) == fixture_dir.root / "joints" / "003" / "IzvOYVMltkI.mp4" / "0114.npy"
    assert bold.video_path(VIDEO) == fixture_dir.root / "videos" / "003" / "IzvOYVMltkI.mp4" / "0114.mp4"


@pytest.mark.parametrize("ncols", [4, 5, 30, 37])
def test_test_rows_accept_4_to_37_columns(tmp_path, ncols):
    row = good_row()[:ncols]
    [inst] = read_annotations(write_csv(tmp_path / "test_meta.csv", [row]), labelled=False)
    assert inst.key == (VIDEO, 0) and (inst.min_frame, inst.max_frame) == (1200, 1350)
    assert inst.categories is None


@pytest.mark.parametrize("ncols", [3, 38])
def test_test_rows_outside_4_to_37_columns_fail(tmp_path, ncols):
    row = (good_row() + ["1"])[:ncols]
    with pytest.raises(BoLDFormatError, match="line 1"):
        read_annotations(write_csv(tmp_path / "test_meta.csv", [row]), labelled=False)


BAD_ROWS = {
    "36 columns": (good_row()[:-1], "expected 37 columns"),
    "38 columns": (good_row() + ["1"], "expected 37 columns"),
    "category not a number": (good_row(cats=["x"] + [0.1] * 25), "column 4"),
    "category above 1": (good_row(cats=[0.1] * 25 + [1.5]), "column 29"),
    "category negative": (good_row(cats=[-0.1] + [0.1] * 25), "outside"),
    "category empty": (good_row(cats=[""] + [0.1] * 25), "column 4"),
    "valence above 10": (good_row()[:30] + ["10.5"] + good_row()[31:], "column 30"),
    "arousal nan": (good_row()[:31] + ["nan"] + good_row()[32:], "column 31"),
    "dominance inf": (good_row()[:32] + ["inf"] + good_row()[33:], "column 32"),
    "person not integer": ([VIDEO, "1.5"] + good_row()[2:], "person_id"),
    "person not a number": ([VIDEO, "bob"] + good_row()[2:], "person_id"),
    "min after max": (good_row()[:2] + ["20", "10"] + good_row()[4:], "min_frame 20 > max_frame 10"),
    "frame not integer": (good_row()[:2] + ["2.5"] + good_row()[3:], "min_frame"),
    "video not mp4": (["003/a.mp4/0001.avi"] + good_row()[1:], "column 0"),
    "video empty": ([""] + good_row()[1:], "empty"),
    "video absolute": (["/data/BOLD/videos/003/a.mp4/0001.mp4"] + good_row()[1:], "relative"),
    "video escapes": (["../003/a.mp4/0001.mp4"] + good_row()[1:], "relative"),
    "gender not a number": (good_row()[:33] + ["male"] + good_row()[34:], "column 33"),
}


@pytest.mark.parametrize("name", list(BAD_ROWS))
def test_a_bad_row_names_file_and_line(tmp_path, name):
    bad, reason = BAD_ROWS[name]
    path = write_csv(tmp_path / "train.csv", [good_row(person=0), good_row(person=1), bad])
    with pytest.raises(BoLDFormatError) as info:
        read_annotations(path, labelled=True)
    assert info.value.file == str(path) and info.value.line == 3
    assert reason in info.value.reason
    assert f"{path}, line 3" in str(info.value)


def test_empty_optional_columns_are_none(tmp_path):
    row = good_row()[:33] + ["", "", "", ""]
    [inst] = read_annotations(write_csv(tmp_path / "train.csv", [row]), labelled=True)
    assert inst.gender is inst.age is inst.ethnicity is inst.confidence is None


def test_header_row_is_rejected_with_a_hint(tmp_path):
    header = ["video", "person_id", "min_frame", "max_frame"] + [f"c{i}" for i in range(33)]
    path = write_csv(tmp_path / "train.csv", [header, good_row()])
    with pytest.raises(BoLDFormatError, match="line 1.*header"):
        read_annotations(path, labelled=True)


def test_duplicate_instance_names_both_lines(tmp_path):
    path = write_csv(tmp_path / "val.csv", [good_row(person=2), good_row(person=3), good_row(person=2)])
    with pytest.raises(BoLDFormatError, match=r"line 3: duplicate .*person 2.*line 1"):
        read_annotations(path, labelled=True)


def test_bad_rows_are_collected_and_skipped(tmp_path):
    rows = [good_row(person=0), good_row()[:-1], good_row(person=1), good_row(person=0),
            ["", ""], good_row(person=2)]
    path = write_csv(tmp_path / "train.csv", rows)
    with open(path, "a") as fh:
        fh.write("\n\n")  # trailing blank lines are not rows
    bad: list[dict] = []
    insts = read_annotations(path, labelled=True, bad_rows=bad)
    assert [(i.person_id, i.line) for i in insts] == [(0, 1), (1, 3), (2, 6)]
    assert [b["line"] for b in bad] == [2, 4]  # the all-empty line 5 is skipped as blank
    assert all(b["file"] == str(path) and b["reason"] for b in bad)
    assert "duplicate" in bad[1]["reason"]


def test_blank_lines_keep_line_numbers(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("\n" + ",".join(good_row()) + "\n\n" + ",".join(good_row()[:5]) + "\n")
    with pytest.raises(BoLDFormatError) as info:
        read_annotations(path, labelled=True)
    assert info.value.line == 4


def test_utf8_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(("\ufeff" + ",".join(good_row()) + "\r\n").encode("utf-8"))
    [inst] = read_annotations(path, labelled=True)
    assert inst.video == VIDEO


def test_missing_annotation_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope.csv"):
        read_annotations(tmp_path / "nope.csv", labelled=True)


def test_not_a_bold_directory(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such directory"):
        BoLD(tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match="missing annotations, videos"):
        BoLD(tmp_path)
    (tmp_path / "BOLD_public" / "annotations").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="did you mean .*BOLD_public"):
        BoLD(tmp_path)
    (tmp_path / "BOLD_public" / "videos").mkdir()
    with pytest.raises(DataNotFoundError, match="train.csv"):
        BoLD(tmp_path / "BOLD_public")


def test_missing_split_file_and_unknown_names(tmp_path):
    root = tmp_path / "b"
    (root / "videos").mkdir(parents=True)
    (root / "annotations").mkdir()
    write_csv(root / "annotations" / "train.csv", [good_row()])
    bold = BoLD(root)
    assert len(bold.instances("train")) == 1
    with pytest.raises(DataNotFoundError, match="val.csv"):
        bold.instances("val")
    with pytest.raises(ConfigError, match="'dev'"):
        bold.instances("dev")
    with pytest.raises(ConfigError, match="'random'"):
        bold.instances("train", protocol="random")


@settings(max_examples=40, deadline=None)
@given(
    cats=st.lists(st.floats(0, 1, width=32), min_size=26, max_size=26),
    vad=st.lists(st.floats(0, 10, width=32), min_size=3, max_size=3),
    person=st.integers(0, 10_000),
    frames=st.tuples(st.integers(0, 10**6), st.integers(0, 1000)),
)
def test_valid_rows_round_trip(tmp_path_factory, cats, vad, person, frames):
    lo, span = frames
    row = [VIDEO, str(person), str(lo), str(lo + span), *map(repr, cats), *map(repr, vad), "", "", "", ""]
    path = write_csv(tmp_path_factory.mktemp("rt") / "train.csv", [row])
    [inst] = read_annotations(path, labelled=True)
    assert inst.key == (VIDEO, person) and (inst.min_frame, inst.max_frame) == (lo, lo + span)
    np.testing.assert_array_equal(inst.categories, np.asarray(cats, dtype=np.float32))
    np.testing.assert_array_equal(inst.vad, np.asarray(vad, dtype=np.float32))
