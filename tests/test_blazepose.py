"""BlazePose on LiteRT (``beenet.inference.pose.blazepose``): mediapipe's anchors, alignment square and
suppression written out, checked by hand-made cases and on real photos. (It was checked against
mediapipe's own Tasks graph on vtest.avi, the same people kept, before that engine was removed
with the mediapipe package.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from beenet.errors import BeenetError
from beenet.inference.pose import MediaPipeMultiPose
from beenet.inference.pose import blazepose as bp
from beenet.inference.pose.boxes import roi_from_points
from beenet.inference.pose.keypoints import BODY_LANDMARKS
from beenet.inference.pose.models import find_model_files

#: ai-edge-litert and the model files (fetched once a session; skips without them).
needs_litert = pytest.mark.usefixtures("blazepose_models")


def test_anchor_centres_follow_the_detector_grid():
    a = bp.ssd_anchor_centres()
    assert a.shape == (2254, 2)
    # stride 8: a 28x28 grid, 2 anchors a cell, row by row
    assert np.allclose(a[0], a[1]) and np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[2], [1.5 / 28, 0.5 / 28])
    assert np.allclose(a[2 * 28], [0.5 / 28, 1.5 / 28])
    assert np.allclose(a[1568], [0.5 / 14, 0.5 / 14])  # stride 16 starts after 28*28*2
    # strides 32, 32, 32 share a 7x7 grid: 6 anchors a cell
    assert np.allclose(a[1960:1966], [0.5 / 7, 0.5 / 7]) and np.allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_alignment_square_is_upright_for_a_standing_body_and_turns_with_it():
    up = roi_from_points((100, 200), (100, 120))  # size-and-rotation point straight above
    assert (up.cx, up.cy) == (100, 200) and math.isclose(up.side, 2 * 80 * 1.25) and abs(up.angle) < 1e-9
    right = roi_from_points((100, 200), (180, 200))  # lying, head to the right: turned clockwise
    assert math.isclose(right.angle, math.pi / 2)
    left = roi_from_points((100, 200), (20, 200))
    assert math.isclose(left.angle, -math.pi / 2)
    x, y, w, h = up.bounds()
    assert (x, y, w, h) == (100 - 100, 200 - 100, 200, 200)
    assert math.isclose(roi_from_points((0, 0), (0, -10)).bounds()[2], 25.0)
    tilted = roi_from_points((0, 0), (10, -10))  # 45 degrees: the box around it is sqrt(2) wider
    assert math.isclose(tilted.bounds()[2], tilted.side * math.sqrt(2), rel_tol=1e-6)


def test_weighted_suppression_averages_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kps = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    out = bp.weighted_nms(boxes, kps, scores, iou=0.3)
    assert [round(s, 2) for s, _b, _k in out] == [0.9, 0.8]
    assert np.allclose(out[0][1], (boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5)
    assert np.allclose(out[0][2], (kps[0] * 0.9 + kps[1] * 0.6) / 1.5)
    assert np.allclose(out[1][1], boxes[2]) and np.allclose(out[1][2], kps[2])


@needs_litert
def test_landmarks_turn_with_the_image():
    """The astronaut photo (scikit-image) and the same photo turned a quarter: the detector's square
    turns with her, and the landmarks found on the turned photo are hers, turned (median within 2%
    of the photo)."""
    from skimage import data

    engine = bp.BlazePose(find_model_files())
    img = np.ascontiguousarray(data.astronaut())
    height, width = img.shape[:2]

    def landmarks(im):
        side = max(im.shape[:2])
        found = engine.detect(im, ((im.shape[1] - side) / 2, (im.shape[0] - side) / 2, side), 0.5, 1)
        assert len(found) == 1
        flag, lm = engine.landmarks(im, found[0].roi())
        assert flag > 0.9
        return found[0].roi(), lm

    roi0, lm0 = landmarks(img)
    roi1, lm1 = landmarks(np.ascontiguousarray(np.rot90(img)))  # counter-clockwise: (x, y) -> (y, W-1-x)
    assert abs(roi0.angle) < 0.4 and -math.pi / 2 - 0.4 < roi1.angle < -math.pi / 2 + 0.4
    expected = np.stack([lm0[:, 1], width - 1 - lm0[:, 0]], 1)
    seen = lm0[:BODY_LANDMARKS, 2] > 0.5
    err = np.hypot(*(lm1[:BODY_LANDMARKS, :2] - expected[:BODY_LANDMARKS]).T)[seen]
    assert seen.sum() >= 10 and np.median(err) < 0.02 * max(height, width), np.median(err)


@needs_litert
def test_the_pruned_landmark_model_gives_the_same_landmarks_and_flag():
    """The landmark model without its segmentation, heat-map and world-landmark heads: fewer
    operators, and the two outputs read exactly as the whole model gives them (on the astronaut's
    square and on noise)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert import schema_py_generated as schema
    from skimage import data

    path = find_model_files()["pose_landmarks_detector.tflite"]
    whole = path.read_bytes()
    pruned = bp.pruned_model(whole, bp.LANDMARK_OUTPUTS)
    ops = [schema.Model.GetRootAsModel(m, 0).Subgraphs(0).OperatorsLength() for m in (whole, pruned)]
    assert ops[1] < 0.8 * ops[0], ops

    def run(model: bytes, x: np.ndarray) -> dict:
        it = Interpreter(model_content=model, num_threads=1)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}

    img = np.ascontiguousarray(data.astronaut())
    face = np.ascontiguousarray(img[:256, 128:384]).astype(np.float32)[None] / 255.0
    noise = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    for x in (face, noise):
        a, b = run(whole, x), run(pruned, x)
        assert sorted(b) == sorted(bp.LANDMARK_OUTPUTS) and len(a) == 5
        for name in bp.LANDMARK_OUTPUTS:
            assert np.array_equal(a[name], b[name]), name
    with pytest.raises(ValueError, match="no output named Identity_9"):
        bp.pruned_model(whole, ("Identity", "Identity_9"))


@needs_litert
def test_a_corrupt_landmark_model_is_named(tmp_path):
    files = dict(find_model_files())
    bad = tmp_path / "pose_landmark_full.tflite"
    bad.write_bytes(b"TFL3 but not a model at all")
    files["pose_landmarks_detector.tflite"] = bad
    with pytest.raises(BeenetError, match=r"pose_landmark_full\.tflite: not a valid mediapipe pose model"):
        bp.BlazePose(files)


@needs_litert
@pytest.mark.parametrize("confirm_every", [1, 3])
def test_a_followed_square_left_on_the_background_is_dropped_by_the_next_confirmation(confirm_every):
    """The astronaut, then a wall where she stood: her square is followed by the landmark model
    alone for at most ``confirm_every`` - 1 calls, then the detector must find her again, and
    nobody is left."""
    from skimage import data

    person = np.ascontiguousarray(data.astronaut())
    wall = np.ascontiguousarray(np.repeat(data.brick()[:, :, None], 3, axis=2))
    pose = MediaPipeMultiPose(engine="litert", detector="blazepose", confirm_every=confirm_every, threads=1)
    pose.reset()
    assert len(pose(person, 0)) == 1 and len(pose.runner.follower.tracked) == 1
    counts = [len(pose(wall, i)) for i in range(1, confirm_every + 3)]
    assert counts[confirm_every - 1:] == [0] * 3, counts
    pose.close()


@needs_litert
@pytest.mark.parametrize("options", [{"follow": False}, {"detector": "blazepose"}, {}])
def test_the_person_of_a_still_photo_is_found_on_every_call(options):
    """Without following (every call finds people anew), with the whole-frame detector alone,
    and by default: the astronaut on each of 6 calls, once."""
    from skimage import data

    person = np.ascontiguousarray(data.astronaut())
    pose = MediaPipeMultiPose(engine="litert", threads=1, **options)
    pose.reset()
    assert [len(pose(person, i)) for i in range(6)] == [1] * 6
    assert pose.runner.follower.tracked == [] if options.get("follow") is False else len(pose.runner.follower.tracked) == 1
    pose.close()


@needs_litert
@pytest.mark.parametrize("options", [{"detector": "blazepose"}, {}])
def test_a_lone_job_on_all_threads_finds_what_one_thread_finds(options):
    """A call with a single job and nothing else running (HOG off or done) runs it on one
    engine whose interpreters use every thread; the people are those of ``threads=1``, to the
    bit (the astronaut, 4 calls)."""
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    found = {}
    for threads in (1, 2):
        pose = MediaPipeMultiPose(threads=threads, **options)
        pose.reset()
        found[threads] = [[(d.box, d.keypoints.tobytes()) for d in pose(img, i)] for i in range(4)]
        assert (pose.runner._wide is not None) == (threads == 2)
        pose.close()
    assert found[1] == found[2] and all(len(people) == 1 for people in found[1])


@needs_litert
def test_the_lite_landmark_model_finds_the_same_person():
    """The lite landmark model (``track_lite``) takes the full one's input and gives the same
    outputs: on the astronaut's square both are sure of her and put her joints within 3% of the
    photo of each other."""
    from skimage import data

    engine = bp.BlazePose(find_model_files(lite=True))
    assert engine.has_lite and not bp.BlazePose(find_model_files()).has_lite
    img = np.ascontiguousarray(data.astronaut())
    found = engine.detect(img, (0, 0, img.shape[0]), 0.5, 1)
    (flag_full, full), (flag_lite, lite) = (engine.landmarks(img, found[0].roi(), lite=k) for k in (False, True))
    assert flag_full > 0.9 and flag_lite > 0.9
    seen = (full[:BODY_LANDMARKS, 2] > 0.5) & (lite[:BODY_LANDMARKS, 2] > 0.5)
    err = np.hypot(*(full[:BODY_LANDMARKS, :2] - lite[:BODY_LANDMARKS, :2]).T)[seen]
    assert seen.sum() >= 10 and np.median(err) < 0.03 * img.shape[0], np.median(err)
    assert not np.array_equal(full, lite)  # another model ran


@needs_litert
def test_only_people_whose_square_is_small_are_followed_with_the_lite_model():
    """The astronaut fills her photo: her square is wider than ``track_lite=0.6`` of its height,
    so the default follows her with the full model (the same joints as ``track_lite=0``); with
    ``track_lite=10`` every followed square is small enough and the joints of the calls after
    the first (where she is followed) differ, those of the first call (a new person) do not."""
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    runs = {}
    for lite in (0.0, 0.6, 10.0):
        pose = MediaPipeMultiPose(detector="blazepose", threads=1, track_lite=lite, confirm_every=10)
        pose.reset()
        runs[lite] = [[d.keypoints.tobytes() for d in pose(img, i)] for i in range(3)]
        pose.close()
    assert all(len(people) == 1 for people in runs[10.0])
    assert runs[0.6] == runs[0.0]
    assert runs[10.0][0] == runs[0.0][0] and runs[10.0][1:] != runs[0.0][1:]
