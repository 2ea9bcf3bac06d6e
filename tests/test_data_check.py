"""``beenet data check``: JSON and verdict on a clean and on a broken BoLD directory."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bold_fixture import write_bold_fixture
from beenet.cli import main
from beenet.cli.data import build_parser
from beenet.data.check import check_bold, format_report


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_bold_fixture(tmp_path_factory.mktemp("bold") / "BOLD_public", num_frames=6,
                              width=32, height=32, clips_per_split={"train": 3, "val": 2, "test": 2})


@pytest.fixture
def root(source, tmp_path) -> Path:
    shutil.copytree(source.root, tmp_path / "BOLD_public")
    return tmp_path / "BOLD_public"


def test_clean_directory(source, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["data", "check", str(source.root), "--json", str(out), "--deep"]) == 0
    report = json.loads(out.read_text())
    assert report["usable"] is True and set(report["splits"]) == {"train", "val", "test"}
    for split, n_clips in (("train", 3), ("val", 2), ("test", 2)):
        r = report["splits"][split]
        assert (r["instances"], r["clips"], r["complete_instances"]) == (2 * n_clips, n_clips, 2 * n_clips)
        for kind in ("missing_videos", "missing_joints", "no_joint_rows", "bad_rows", "unreadable_videos"):
            assert r[kind] == [], (split, kind)
    assert sum(report["splits"]["train"]["positives"].values()) > 0
    assert "positives" not in report["splits"]["test"]
    assert report["frame_ranges"]["checked"] == 14 and report["frame_ranges"]["within_absolute"] == 14
    text = capsys.readouterr().out
    assert "Verdict: usable" in text and "instances" in text and "Problems: none found" in text


def _append_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "a", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_broken_directory(root, tmp_path, capsys):
    bold_train = list(csv.reader(open(root / "annotations" / "train.csv")))
    good = bold_train[0]
    # train.csv: a short row, a non-numeric category, an out-of-range valence.
    _append_rows(root / "annotations" / "train.csv", [
        good[:30],
        [good[0], "5", good[2], good[3], "high"] + good[5:],
        [good[0], "6"] + good[2:30] + ["42"] + good[31:],
    ])
    # val.csv: an annotated person that the joints file does not hold.
    val_rows = list(csv.reader(open(root / "annotations" / "val.csv")))
    _append_rows(root / "annotations" / "val.csv", [[val_rows[0][0], "77"] + val_rows[0][2:]])
    train_clips = list(dict.fromkeys(r[0] for r in bold_train))
    (root / "videos" / train_clips[0]).unlink()
    (root / "joints" / Path(train_clips[1]).with_suffix(".npy")).unlink()
    np.save(root / "joints" / Path(train_clips[2]).with_suffix(".npy"), np.zeros((3, 50)))
    test_clip = list(csv.reader(open(root / "annotations" / "test_meta.csv")))[0][0]
    (root / "videos" / test_clip).write_bytes(b"garbage")

    out = tmp_path / "broken.json"
    assert main(["data", "check", str(root), "--json", str(out), "--deep"]) == 1
    report = json.loads(out.read_text())
    assert report["usable"] is False
    train, val, test = (report["splits"][s] for s in ("train", "val", "test"))
    assert train["missing_videos"] == [train_clips[0]]
    assert train["missing_joints"] == [train_clips[1]]
    csv_bad = [b for b in train["bad_rows"] if b["line"] is not None]
    assert [b["line"] for b in csv_bad] == [7, 8, 9]
    assert all(b["file"] == "annotations/train.csv" for b in csv_bad)
    assert "expected 37 columns" in csv_bad[0]["reason"] and "column 4" in csv_bad[1]["reason"]
    assert "column 30" in csv_bad[2]["reason"]
    [npy] = [b for b in train["bad_rows"] if b["line"] is None]
    assert npy["file"].endswith(Path(train_clips[2]).with_suffix(".npy").name) and "(N, 56)" in npy["reason"]
    assert train["instances"] == 6 and train["complete_instances"] == 0 and not train["parsed"]
    assert val["no_joint_rows"] == [{"video": val_rows[0][0], "person_id": 77}]
    assert val["parsed"] and val["complete_instances"] == 4
    assert [u["video"] for u in test["unreadable_videos"]] == [test_clip]
    captured = capsys.readouterr()
    assert "Verdict: NOT usable" in captured.out and "line 7" in captured.out
    assert "not usable" in captured.err


def test_not_usable_without_val(root):
    (root / "annotations" / "val.csv").unlink()
    report = check_bold(root)
    assert report["usable"] is False and report["splits"]["val"]["found"] is False
    assert report["splits"]["train"]["complete_instances"] == 6
    assert "val.csv is missing" in format_report(report)


def test_long_problem_lists_are_cut(root):
    _append_rows(root / "annotations" / "train.csv", [["003/x.mp4/0001.mp4", str(i)] for i in range(25)])
    text = format_report(check_bold(root), show=10)
    assert "... and 15 more" in text


def test_json_to_stdout(source, capsys):
    assert main(["data", "check", str(source.root), "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["usable"] is True and "Verdict" in captured.err


@pytest.mark.parametrize("make", ["missing", "empty", "parent"])
def test_not_a_bold_directory_is_one_line(tmp_path, source, capsys, make):
    target = tmp_path / "nope"
    if make == "empty":
        target.mkdir()
    if make == "parent":
        shutil.copytree(source.root, target / "BOLD_public")
    assert main(["data", "check", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(target) in err[0] and "error" in err[0]
    if make == "parent":
        assert "did you mean" in err[0]


def test_help_reads_like_a_man_page():
    parser = build_parser("beenet data")
    text = parser.format_help()
    assert "examples:" in text and "beenet data check ~/data/BOLD_public" in text and "exit status" in text
    args = parser.parse_args(["check", "DIR", "--deep", "--json", "x.json"])
    assert args.deep and args.json == "x.json" and str(args.dir) == "DIR"
    assert main(["data"]) == 2
