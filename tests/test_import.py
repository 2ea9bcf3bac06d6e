"""``beenet import``: labelled real footage -> a BoLD-layout dataset -> data check -> train -> eval."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from beenet.cli import main
from beenet.importing.build import draw_splits
from beenet.importing.labels_file import FULL_HEADER, read_labels
from footage import footage
from train_helpers import TINY, restore_root_logging

_restore_logging = pytest.fixture(autouse=True)(restore_root_logging)

#: What a dataset without sidecar context trains with: no place/object streams, the official
#: protocol (train.csv / val.csv as written by the import).
OWN_DATA = ["context.source=none", "model.place_stream=false", "model.object_stream=false",
            "model.fusion=none", "run.protocol=official"]


def _cats(*on: int) -> list[str]:
    return ["1" if i in on else "0" for i in range(26)]


def _full(video: str, pid: int, start: int, end: int, annotator: str, cats: list[str], vad: tuple) -> list:
    return [video, pid, start, end, annotator, *cats, *vad]


def test_label_rows_that_break_a_rule_are_named_by_line_and_the_rest_read(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    rows = [FULL_HEADER,
            _full("a.mp4", 0, 5, 20, "ann", _cats(1), (5, 5, 5)),
            _full("a.mp4", 0, 20, 5, "ann", _cats(1), (5, 5, 5)),       # end before start
            _full("a.mp4", 0, 5, 20, "ann", _cats(1), (5, 11, 5)),      # arousal off the scale
            ["a.mp4", *_cats(2)[:-1], 5, 5, 5],                         # a column short
            ["b.mp4", *_cats(3), 7, 3, 4],                              # plain form
            _full("a.mp4", "x", 5, 20, "ann", _cats(1), (5, 5, 5))]     # person id not a number
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    good, problems = read_labels(path)
    assert [r.line for r in good] == [2, 6] and good[1].plain and good[1].vad == (7.0, 3.0, 4.0)
    said = {p.where.rsplit(" ", 1)[1]: p.reason for p in problems}
    assert set(said) == {"3", "4", "5", "7"}
    assert "end_frame 5 is before start_frame 20" in said["3"]
    assert "arousal must be in [1, 10]" in said["4"] and "'11'" in said["4"]
    assert "expected 34 columns" in said["5"] and "found 29" in said["5"]
    assert "person_id is not a number: 'x'" in said["7"]
    assert all(p.where.startswith(f"{path}, line ") for p in problems)


def test_videos_are_split_not_clips_and_the_split_is_seeded() -> None:
    videos = [f"v{i}.mp4" for i in range(10)]
    a = draw_splits(videos, 0.2, 0.1, seed=3)
    assert [len(a[s]) for s in ("train", "val", "test")] == [7, 2, 1]
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(videos)
    assert draw_splits(videos, 0.2, 0.1, seed=3) == a and draw_splits(videos, 0.2, 0.1, seed=4) != a
    # Two videos: one each in train and val, whatever the fraction.
    two = draw_splits(["a", "b"], 0.2, 0.0, seed=0)
    assert len(two["train"]) == len(two["val"]) == 1 and two["test"] == []


@pytest.fixture(scope="module")
def imported(tmp_path_factory, blazepose_models):
    """One import of two real videos (carphone.mp4 and a copy under another name: pass 1 is cached by
    content, so the copy costs no second pose run on a 2-core machine), with a labels file that also holds a bad row, a person the
    tracker did not produce, a span past the video's end, an unknown video and an unreadable one."""
    from beenet.importing.tracks import tracked_people
    from beenet.inference.pose import make_pose_backend
    from beenet.inference.tracking_config import TrackingConfig

    tmp = tmp_path_factory.mktemp("import")
    car = footage("carphone.mp4")
    copy = tmp / "car_copy.mp4"
    copy.write_bytes(car.read_bytes())
    broken = tmp / "broken.mp4"
    broken.write_bytes(b"this is not a video\n" * 50)
    backend = make_pose_backend("auto")
    backend.reset()
    try:  # the ids 'beenet predict' shows; cached, so the import does not pose carphone again
        tracked = tracked_people(car, backend, TrackingConfig(), show_progress=False)
    finally:
        backend.close()
    pid = tracked.longest()
    assert pid is not None, "the tracker found nobody in carphone.mp4"
    labels = tmp / "labels.csv"
    rows = [FULL_HEADER,
            _full("carphone.mp4", pid, 10, 100, "ann1", _cats(0, 6), (6, 4, 5)),            # line 2
            _full("carphone.mp4", pid, 10, 100, "ann2", _cats(6), (4, 6, 5)),               # line 3
            ["car_copy.mp4", *_cats(4, 5), 7, 5, 6],                                        # line 4 plain
            _full("carphone.mp4", pid, 10, 100, "ann3", _cats(6), (12, 5, 5)),              # line 5 bad
            _full("carphone.mp4", 99, 10, 100, "ann1", _cats(6), (5, 5, 5)),                # line 6 no one
            _full("carphone.mp4", pid, 10, 500, "ann1", _cats(6), (5, 5, 5)),               # line 7 past end
            _full("broken.mp4", 0, 0, 10, "ann1", _cats(6), (5, 5, 5)),                     # line 8 unreadable
            _full("nowhere.mp4", 0, 0, 10, "ann1", _cats(6), (5, 5, 5))]                    # line 9 not given
    with open(labels, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    out = tmp / "dataset"
    return tmp, labels, out, pid, [str(car), str(copy), str(broken)]


@pytest.mark.slow
def test_import_real_footage_then_check_train_and_eval(imported, capsys, tmp_path) -> None:
    tmp, labels, out, pid, videos = imported
    assert main(["import", *videos, "--labels", str(labels), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    said = {int(line.split(", line ")[1].split(":")[0]): line for line in cap.err.splitlines()
            if line.startswith("beenet import: skipped:")}
    assert set(said) == {5, 6, 7, 8, 9}, cap.err
    assert "valence must be in [1, 10] (BoLD's scale): '12'" in said[5]
    assert "person 99 is not among the people the tracker found in carphone.mp4" in said[6]
    assert "the span 10-500 is outside carphone.mp4, which has 120 frames (0-119)" in said[7]
    assert "the video cannot be read" in said[8] and "broken.mp4" in said[8]
    assert "video 'nowhere.mp4' is not among the videos given" in said[9]
    assert "imported 2 instances in 2 clips" in cap.out and "5 problems" in cap.out

    # BoLD's layout: 37-column headerless CSVs, split by video, soft scores = mean over annotators.
    ann = {s: list(csv.reader(open(out / "annotations" / f"{s}.csv"))) for s in ("train", "val")}
    assert sorted(len(ann[s]) for s in ann) == [1, 1]
    rows = {r[0]: r for s in ann for r in ann[s]}
    assert all(len(r) == 37 for r in rows.values())
    car_clip = next(c for c in rows if c.startswith("000/carphone.mp4/"))
    car = rows[car_clip]
    assert car_clip == "000/carphone.mp4/0001.mp4" and car[1:4] == [str(pid), "10", "100"]
    cats = [float(x) for x in car[4:30]]
    assert cats[0] == 0.5 and cats[6] == 1.0 and sum(cats) == 1.5
    assert [float(x) for x in car[30:33]] == [5.0, 5.0, 5.0]
    joints = np.load(out / "joints" / "000" / "carphone.mp4" / "0001.npy")
    assert joints.shape[1] == 56 and joints[:, 0].min() == 10 and joints[:, 0].max() <= 100
    assert pid in set(joints[:, 1].astype(int))
    from beenet.media.video import VideoReader

    with VideoReader(out / "videos" / car_clip) as r:
        assert r.num_frames == 91
    manifest = json.loads((out / "beenet-import.json").read_text())
    inst = next(i for i in manifest["instances"] if i["video"] == car_clip)
    assert inst["span"] == [10, 100] and inst["person_id"] == pid and inst["annotators"] == ["ann1", "ann2"]
    assert inst["source"].endswith("carphone.mp4") and manifest["pass_one"]["pose"]["name"]
    assert len(manifest["problems"]) == 5
    assert set(manifest["splits"]["train"]).isdisjoint(manifest["splits"]["val"])
    plain = next(i for i in manifest["instances"] if i["video"] == "000/car_copy.mp4/0001.mp4")
    assert plain["person_id"] == pid and plain["annotators"] == [""] and plain["label_lines"] == [4]

    # The tools that read BoLD read it unchanged.
    assert main(["data", "check", str(out)]) == 0
    run = tmp_path / "run"
    sets = [x for t in TINY + OWN_DATA if not t.startswith("optim.epochs") for x in ("--set", t)]
    assert main(["train", "--data", str(out), "--out", str(run), "--config", "demo", "--epochs", "1"] + sets) == 0
    scores = tmp_path / "m.json"
    assert main(["eval", "--data", str(out), "--checkpoint", str(run / "best.pt"), "--split", "val",
                 "--out", str(tmp_path / "ev"), "--json", str(scores)]) == 0
    got = json.loads(scores.read_text())
    assert got["split"] == "val" and got["n"] == 1
    # A split under 200 instances comes with bootstrap intervals (here undefined: one instance).
    assert got["intervals"]["level"] == 0.95 and got["intervals"]["ERS"] is None


def test_an_import_with_nothing_to_import_fails_naming_the_problems(tmp_path, capsys) -> None:
    labels = tmp_path / "labels.csv"
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: no row names it")
    labels.write_text(",".join(map(str, _full("gone.mp4", 0, 0, 5, "a", _cats(1), (5, 5, 5)))) + "\n"
                      + ",".join(map(str, _full("clip.mp4", 0, 0, 5, "a", _cats(1), (0, 5, 5)))) + "\n")
    out = tmp_path / "ds"
    assert main(["import", str(video), "--labels", str(labels), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"beenet import: skipped: {labels}, line 1: video 'gone.mp4' is not among the videos given" in err
    assert f"{labels}, line 2: valence must be in [1, 10]" in err
    assert f"beenet import: error: {labels}: no row could be imported (2 problems" in err
    assert not out.exists()
    # An output folder that holds something is refused before any work.
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["import", str(video), "--labels", str(labels), "--out", str(out)]) == 1
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_fine_tune_a_context_model_on_imported_footage(imported, capsys, tmp_path) -> None:
    """The chain of the worked example (docs/own-data.md) on real footage: import -> data check ->
    train one epoch with the finetune preset from a tiny demo-like checkpoint (place and object
    streams, the beenet fusion: a model that needs context, on data that has none) -> eval."""
    import torch

    from beenet.artifacts.checkpoint import load_checkpoint
    from beenet.weights import file_sha256
    from train_helpers import write_tiny_synth

    tmp, _, _, pid, videos = imported
    car, copy = videos[0], videos[1]
    labels = tmp_path / "labels.csv"
    # Three spans of the one person in each video, two annotators on one: val (one of the two
    # videos) then holds positives and negatives of categories 0 and 6 and VAD that varies.
    rows = [FULL_HEADER]
    for video in ("carphone.mp4", "car_copy.mp4"):
        rows += [_full(video, pid, 0, 39, "a", _cats(0), (7, 6, 5)),
                 _full(video, pid, 40, 79, "a", _cats(6), (3, 4, 5)),
                 _full(video, pid, 40, 79, "b", _cats(0, 6), (4, 4, 6)),
                 _full(video, pid, 80, 119, "a", _cats(), (5, 2, 4))]
    with open(labels, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    data = tmp_path / "mine"
    assert main(["import", car, copy, "--labels", str(labels), "--out", str(data)]) == 0
    assert "imported 6 instances in 6 clips" in capsys.readouterr().out
    assert main(["data", "check", str(data)]) == 0

    synth = write_tiny_synth(tmp_path / "synth")
    first = tmp_path / "first"
    sets = [x for t in TINY if not t.startswith("optim.epochs") for x in ("--set", t)]
    assert main(["train", "--data", str(synth), "--out", str(first), "--config", "demo", "--epochs", "1"] + sets) == 0
    init = first / "best.pt"
    tuned = tmp_path / "tuned"
    assert main(["train", "--data", str(data), "--out", str(tuned), "--config", "finetune", "--init", str(init),
                 "--epochs", "1", "--set", "run.device=cpu", "--set", "run.num_workers=0"]) == 0
    a, b = load_checkpoint(init), load_checkpoint(tuned / "best.pt")
    # The model the init was (its config), no context source, the init's priors kept as they were.
    assert b["config"]["model"] == {**a["config"]["model"], "pretrained": False}
    assert b["config"]["context"]["source"] == "none" and b["config"]["context"]["priors"] == "init"
    priors = [k for k in a["model"] if k.startswith("priors.")]
    assert priors and all(torch.equal(a["model"][k], b["model"][k]) for k in priors)
    assert b["pretrained_weights"]["init"]["sha256"] == file_sha256(init)
    assert b["trained_on"]["data"] == "mine" and b["trained_on"]["kind"] == "imported"  # not BoLD
    scores = tmp_path / "m.json"
    assert main(["eval", "--data", str(data), "--checkpoint", str(tuned / "best.pt"), "--split", "val",
                 "--out", str(tmp_path / "ev"), "--json", str(scores)]) == 0
    got = json.loads(scores.read_text())
    assert got["split"] == "val" and got["n"] == 3
    # Categories 0 and 6 have both a positive and a negative in val: an AP is defined.
    assert got["intervals"]["level"] == 0.95 and isinstance(got["mAP"], float) and 0 <= got["mAP"] <= 1, got
