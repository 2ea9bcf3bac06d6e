"""Shot cuts: the colour-histogram detector on synthetic frames and on real footage whose cuts were
verified by eye (frame numbers are the first frame of each new shot)."""

from __future__ import annotations

import numpy as np
import pytest
from footage import footage

from beenet.inference.pose import PoseBackendBase
from beenet.inference.shots import ShotCutDetector, hsv_histogram

#: Verified by looking at the frames on either side (benchmarks/bench_tracking.py, docs/predict.md).
CUTS = {"bikes.mp4": [30, 76, 137, 187, 242], "face_noface.mov": [72], "talking.mp4": [], "vtest.avi": []}


def _cuts(path) -> list[int]:
    from beenet.media.video import VideoReader

    det = ShotCutDetector()
    with VideoReader(path) as r:
        return [i for i, frame in r.iter_frames() if det(frame)]


def _noise(seed: int, colour: tuple[int, int, int], size=(72, 128)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.array(colour) + rng.integers(-20, 20, (*size, 3)), 0, 255).astype(np.uint8)


def test_histogram_is_normalised_and_colour_sensitive():
    a, b = hsv_histogram(_noise(0, (200, 40, 40))), hsv_histogram(_noise(1, (40, 40, 200)))
    assert a.sum() == pytest.approx(1.0) and b.sum() == pytest.approx(1.0)
    assert 0.5 * np.abs(a - b).sum() > 0.9  # red vs blue: almost nothing in common
    assert 0.5 * np.abs(a - hsv_histogram(_noise(2, (200, 40, 40)))).sum() < 0.2


def test_a_hard_cut_is_found_once_and_a_slow_fade_is_not():
    det = ShotCutDetector()
    frames = [_noise(i, (200, 40, 40)) for i in range(10)] + [_noise(i, (40, 160, 60)) for i in range(10, 20)]
    assert [i for i, f in enumerate(frames) if det(f)] == [10]
    det.reset()
    fade = [_noise(i, (int(200 - 8 * i), 40, int(40 + 8 * i))) for i in range(20)]  # red to blue in 20 steps
    assert not any(det(f) for f in fade)


def test_a_black_flash_between_two_shots_is_one_cut():
    det = ShotCutDetector()
    black = np.zeros((72, 128, 3), np.uint8)
    frames = [_noise(i, (200, 40, 40)) for i in range(8)] + [black] + [_noise(i, (40, 40, 200)) for i in range(8)]
    assert [i for i, f in enumerate(frames) if det(f)] == [8]


def test_the_first_frame_is_never_a_cut_and_reset_forgets():
    det = ShotCutDetector()
    assert det(_noise(0, (200, 40, 40))) is False
    det.reset()
    assert det(_noise(1, (40, 40, 200))) is False  # no previous frame after reset


@pytest.mark.parametrize("clip", ["bikes.mp4", "face_noface.mov"])
def test_verified_cuts_on_real_footage(clip):
    found = _cuts(footage(clip))
    assert len(found) == len(CUTS[clip]), found
    assert all(abs(f - c) <= 1 for f, c in zip(found, CUTS[clip])), found


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["talking.mp4", "vtest.avi"])
def test_no_cut_in_continuous_footage(clip):
    assert _cuts(footage(clip)) == []


class _ShotRecorder(PoseBackendBase):
    """A pose backend that finds nobody and records the frames that start a shot it was told of."""

    name = "shot-recorder"
    needs_pixels = True

    def __init__(self) -> None:
        self.told, self.starts = False, []

    def reset(self) -> None:
        self.told, self.starts = False, []

    def new_shot(self) -> None:
        self.told = True

    def __call__(self, frame, index=None):
        if self.told:
            self.starts.append(int(index))
            self.told = False
        return []


def test_the_predictor_tells_the_pose_backend_of_each_shot_cut(tmp_path):
    """The backend's new_shot() runs at each cut, before the new shot's first frame is posed
    (mediapipe's backend then forgets the people it followed and runs HOG on the whole frame)."""
    from _predict_helpers import make_checkpoint

    from beenet.inference.predictor import Predictor

    backend = _ShotRecorder()
    with Predictor(make_checkpoint(tmp_path / "c.pt"), device="cpu", pose=backend, window=1.0, stride=1.0) as p:
        result = p.run(footage("bikes.mp4"))
    assert len(result.table) == 0
    assert backend.starts == CUTS["bikes.mp4"]
