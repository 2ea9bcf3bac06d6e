"""The pose backend built on a thread while ``beenet predict`` imports torch
(``beenet.inference.pose.early.PoseBuild``): a Predictor given one uses the backend it built, with
the settings a backend built by name records, and reports a failed build as one of its own."""

from __future__ import annotations

import threading

import pytest

from _predict_helpers import make_checkpoint
from beenet.inference.pose import early
from beenet.inference.pose.early import PoseBuild


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "still.pt")


def test_a_predictor_takes_the_backend_built_early(ckpt, blazepose_models):
    from beenet.inference.predictor import Predictor

    options = {"person_size": 320, "num_poses": 4}
    build = PoseBuild("mediapipe", options)
    with Predictor(ckpt, device="cpu", pose=build) as predictor:
        backend = predictor.check_pose()
        assert backend is build.result() and backend.person.size == 320
        early_settings = predictor.settings(backend)["pose"]
    with Predictor(ckpt, device="cpu", pose="mediapipe", pose_options=options) as predictor:
        assert predictor.settings(predictor.check_pose())["pose"] == early_settings


def test_a_failed_early_build_is_reported_as_the_predictors_own(ckpt, blazepose_models):
    from beenet.inference.predictor import PoseBackendError, Predictor

    errors = []
    for pose in (PoseBuild("mediapipe", {"hog_evry": 2}), "mediapipe"):
        kwargs = {"pose_options": {"hog_evry": 2}} if isinstance(pose, str) else {}
        with Predictor(ckpt, device="cpu", pose=pose, **kwargs) as predictor, \
                pytest.raises(PoseBackendError) as info:
            predictor.check_pose()
        errors.append((str(info.value), info.value.option, info.value.install))
    assert errors[0] == errors[1] and errors[0][1] is True
    assert "hog_evry" in errors[0][0]


def test_pose_options_beside_a_build_are_refused(ckpt, blazepose_models):
    from beenet.errors import ConfigError
    from beenet.inference.predictor import Predictor

    build = PoseBuild("mediapipe")
    try:
        with pytest.raises(ConfigError, match="PoseBuild has its own"):
            Predictor(ckpt, device="cpu", pose=build, pose_options={"tiles": 2})
    finally:
        build.close()


class _Backend:
    def __init__(self) -> None:
        self.thread = threading.current_thread().name
        self.closed = False

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_a_build_nobody_took_is_closed_and_a_taken_one_is_left_to_its_taker(monkeypatch):
    made: list[_Backend] = []
    monkeypatch.setattr(early, "make_pose_backend", lambda name, device, **o: made.append(_Backend()) or made[-1])
    untaken = PoseBuild("mediapipe")
    untaken.close()
    assert made[0].closed and made[0].thread == "beenet-pose-build"
    taken = PoseBuild("mediapipe")
    backend = taken.result()
    taken.close()
    assert backend is made[1] and not backend.closed


def test_only_the_backends_that_need_no_device_are_built_early():
    assert PoseBuild.wanted("mediapipe") and not PoseBuild.wanted("rcnn")
