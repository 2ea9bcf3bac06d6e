"""Pose backends: the skeleton mappings onto OpenPose-18, precomputed keypoints, and the backends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beenet.errors import BeenetError, BoLDFormatError
from beenet.inference.pose import (
    BODY25_TO_OPENPOSE,
    KeypointRCNNPose,
    PrecomputedPose,
    coco17_to_openpose,
    detection_from_keypoints,
    make_pose_backend,
    mediapipe_to_openpose,
    openpose_flat_to_18,
)
from beenet.labels import OPENPOSE_JOINTS

# Names of the landmarks each skeleton calls by these OpenPose names.
_MP = {"Nose": 0, "REye": 5, "LEye": 2, "REar": 8, "LEar": 7, "RShoulder": 12, "LShoulder": 11,
       "RElbow": 14, "LElbow": 13, "RWrist": 16, "LWrist": 15, "RHip": 24, "LHip": 23, "RKnee": 26,
       "LKnee": 25, "RAnkle": 28, "LAnkle": 27}
_COCO = {"Nose": 0, "LEye": 1, "REye": 2, "LEar": 3, "REar": 4, "LShoulder": 5, "RShoulder": 6,
         "LElbow": 7, "RElbow": 8, "LWrist": 9, "RWrist": 10, "LHip": 11, "RHip": 12, "LKnee": 13,
         "RKnee": 14, "LAnkle": 15, "RAnkle": 16}


def test_mediapipe_mapping_names_each_joint_and_builds_the_neck():
    W, H = 200, 100
    lm = np.zeros((33, 3), dtype=np.float32)
    lm[:, 0] = (np.arange(33) + 1) / 40.0  # distinct x per landmark, all inside the frame
    lm[:, 1] = 0.5
    lm[:, 2] = 0.9
    kp = mediapipe_to_openpose(lm, W, H)
    assert kp.shape == (18, 3)
    for name, idx in _MP.items():
        j = OPENPOSE_JOINTS.index(name)
        assert kp[j, 0] == pytest.approx(lm[idx, 0] * W), name
        assert kp[j, 1] == pytest.approx(50.0)
    neck = OPENPOSE_JOINTS.index("Neck")
    assert kp[neck, 0] == pytest.approx((lm[11, 0] + lm[12, 0]) / 2 * W)
    assert kp[neck, 2] == pytest.approx(0.9)


def test_mediapipe_points_outside_the_frame_are_missing():
    lm = np.full((33, 3), 0.5, dtype=np.float32)
    lm[0, 0] = 1.4  # the nose extrapolated off the right edge
    kp = mediapipe_to_openpose(lm, 64, 64)
    assert np.isnan(kp[0, 0]) and kp[0, 2] == 0.0
    assert np.isfinite(kp[1:, :2]).all()


def test_coco17_mapping():
    coco = np.zeros((17, 3), dtype=np.float32)
    coco[:, 0] = np.arange(17) * 10 + 5
    coco[:, 1] = 7
    coco[:, 2] = 0.8
    kp = coco17_to_openpose(coco)
    for name, idx in _COCO.items():
        assert kp[OPENPOSE_JOINTS.index(name), 0] == coco[idx, 0], name
    assert kp[1, 0] == pytest.approx((coco[5, 0] + coco[6, 0]) / 2)


def test_coco17_missing_shoulder_means_missing_neck():
    coco = np.full((17, 3), 10.0, dtype=np.float32)
    coco[:, 2] = 0.9
    coco[5] = np.nan
    kp = coco17_to_openpose(coco)
    assert np.isnan(kp[1, 0]) and kp[1, 2] == 0.0
    assert np.isnan(kp[OPENPOSE_JOINTS.index("LShoulder"), 0])


def test_openpose_flat_coco18_body25_and_bad_length():
    coco18 = np.arange(54, dtype=np.float32) + 1
    coco18[2::3] = 0.9
    coco18[[0, 1, 2]] = 0.0  # nose not found: (0, 0, 0)
    kp = openpose_flat_to_18(coco18.tolist())
    assert np.isnan(kp[0, 0]) and kp[0, 2] == 0
    assert kp[1, 0] == coco18[3]
    body25 = np.arange(75, dtype=np.float32).reshape(25, 3)
    body25[:, 2] = 0.9
    kp25 = openpose_flat_to_18(body25.ravel().tolist())
    assert np.array_equal(kp25[:, 0], body25[list(BODY25_TO_OPENPOSE), 0])
    assert kp25[OPENPOSE_JOINTS.index("RHip"), 0] == body25[9, 0]  # BODY_25's MidHip (8) is skipped
    with pytest.raises(BoLDFormatError, match="54 .*75"):
        openpose_flat_to_18([1.0] * 30, "x.json")


def _person(cx: float) -> list[float]:
    kp = np.zeros((18, 3), dtype=np.float32)
    kp[:, 0] = cx + np.arange(18)
    kp[:, 1] = 20 + np.arange(18)
    kp[:, 2] = 0.8
    return kp.ravel().tolist()


def test_openpose_json_folder(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for f in (3, 4, 6):  # OpenPose numbers from where it started; a frame with nobody still has a file
        people = [{"pose_keypoints_2d": _person(10)}, {"pose_keypoints_2d": _person(50)}] if f != 6 else []
        (folder / f"clip_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    pose = PrecomputedPose.from_openpose_json(folder)
    assert sorted(pose.frames) == [0, 1]
    assert pose(None, 0)[0].keypoints[0, 0] == 10 and pose(None, 0)[1].keypoints[0, 0] == 50
    assert pose(None, 3) == []
    assert not pose.needs_pixels and pose.num_frames == 2
    with pytest.raises(ValueError):
        pose(np.zeros((4, 4, 3), np.uint8))


def test_openpose_json_bad_file_names_it(tmp_path):
    (tmp_path / "a_000000000000_keypoints.json").write_text("{not json")
    with pytest.raises(BoLDFormatError, match="a_000000000000_keypoints.json"):
        PrecomputedPose.from_openpose_json(tmp_path)


def test_bold_joints_keep_person_ids_and_rebase_frames(tmp_path):
    rows = []
    for f in range(5):
        for pid, cx in ((7, 10.0), (9, 60.0)):
            kp = np.array(_person(cx), dtype=np.float64)
            rows.append([1000 + f, pid, *kp])
    path = tmp_path / "clip.npy"
    np.save(path, np.array(rows[::-1]))  # rows need not be sorted
    pose = PrecomputedPose.from_bold_joints(path)
    assert sorted(pose.frames) == list(range(5))
    ids = sorted(d.track_id for d in pose(None, 0))
    assert ids == [7, 9]
    pose.check_matches(5, 100, 60, "clip.mp4")


def test_check_matches_rejects_keypoints_of_another_video():
    det = detection_from_keypoints(np.array(_person(10), dtype=np.float32).reshape(18, 3))
    pose = PrecomputedPose({0: [det], 29: [det]}, source="k.npy")
    with pytest.raises(BoLDFormatError, match=r"k\.npy.*frame 29.*v\.mp4 has only 10 frames"):
        pose.check_matches(10, 200, 200, "v.mp4")
    with pytest.raises(BoLDFormatError, match="outside the 20x20 frames"):
        pose.check_matches(30, 20, 20, "v.mp4")
    pose.check_matches(30, 200, 200, "v.mp4")


def test_detection_needs_two_valid_joints():
    kp = np.full((18, 3), np.nan, dtype=np.float32)
    kp[:, 2] = 0
    assert detection_from_keypoints(kp) is None
    kp[0] = (5, 5, 0.9)
    kp[1] = (9, 20, 0.5)
    det = detection_from_keypoints(kp)
    assert det.box == (5.0, 5.0, 4.0, 15.0)
    assert det.score == pytest.approx(0.7)


@pytest.mark.slow
def test_keypoint_rcnn_runs_offline_with_random_weights():
    pose = KeypointRCNNPose(weights=None, max_size=96, score_threshold=0.0)
    dets = pose(np.zeros((64, 80, 3), np.uint8))
    for d in dets:  # a random net finds junk or nothing; whatever it finds is well formed
        assert d.keypoints.shape == (18, 3) and len(d.box) == 4
    assert pose.name == "rcnn" and pose.needs_pixels


def test_unknown_backend():
    with pytest.raises(BeenetError, match="unknown pose backend 'openpose'"):
        make_pose_backend("openpose")
