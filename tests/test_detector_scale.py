"""``person_size=auto``: the person detector's input grows for small people and stays for large
ones (:class:`beenet.inference.pose.scale.DetectorScale`), and the backend runs the detector at
the size chosen, on real footage."""

from __future__ import annotations

import pytest

from beenet.inference.pose.scale import DOWN_PX, LADDER, MIN_CALLS, MIN_PX, WINDOW, DetectorScale


def _call(height: float, n: int = 4, score: float = 0.6) -> list:
    return [((10.0 * k, 0.0, height / 2, height), score) for k in range(n)]


def test_fixed_size_never_moves():
    scale = DetectorScale(384)
    for _ in range(10):
        scale.observe(_call(10.0), 640, 360)
    assert scale.size == 384 and scale.sizes_used == {384}


def test_small_people_raise_the_size_after_enough_calls():
    scale = DetectorScale(384, auto=True)
    # 30 px tall people on a 640 px wide frame: 18 px in a 384 input, 24 at 512
    for k in range(MIN_CALLS):
        assert scale.size == 384, k  # nothing decided before MIN_CALLS calls
        scale.observe(_call(30.0), 640, 360)
    assert scale.size == LADDER[-1] == 512  # the largest, though still short of MIN_PX there


def test_the_size_is_the_smallest_where_the_median_is_tall_enough():
    scale = DetectorScale(384, auto=True)
    longer = 1280
    median = MIN_PX * 1280 / 512 + 1  # tall enough at 512, not at 384
    for _ in range(MIN_CALLS):
        scale.observe(_call(median), longer, 720)
    assert scale.size == 512


def test_large_people_keep_the_start_and_boxes_under_the_threshold_do_not_count():
    scale = DetectorScale(384, auto=True, threshold=0.3)
    for _ in range(2 * MIN_CALLS):
        scale.observe(_call(300.0) + _call(8.0, score=0.2), 1280, 720)
    assert scale.size == 384


def test_going_down_needs_a_margin_and_reset_starts_over():
    scale = DetectorScale(384, auto=True)
    for _ in range(MIN_CALLS):
        scale.observe(_call(30.0), 1280, 720)
    assert scale.size == 512
    # medians tall enough at 384 (MIN_PX) but under DOWN_PX there: no step down, however long
    between = (MIN_PX + DOWN_PX) / 2 * 1280 / 384
    for _ in range(3 * WINDOW):
        scale.observe(_call(between), 1280, 720)
    assert scale.size == 512
    for _ in range(WINDOW):  # the window's calls are all taller now
        scale.observe(_call(DOWN_PX * 1280 / 384 + 1), 1280, 720)
    assert scale.size == 384 and scale.sizes_used == {384, 512}
    scale.observe(_call(30.0), 1280, 720)
    scale.reset()
    assert scale.size == 384


def test_a_frame_smaller_than_the_start_keeps_the_start():
    scale = DetectorScale(384, auto=True)
    for _ in range(MIN_CALLS):
        scale.observe(_call(12.0), 320, 240)
    assert scale.size == 384 and LADDER[0] == 384


@pytest.mark.slow
def test_the_backend_runs_the_detector_larger_on_a_small_copy_of_real_people(blazepose_models):
    """vtest.avi's pedestrians shrunk to half size inside a frame of the same size (people 30-40
    px tall): with ``person_size=auto`` the detector's calls move up from 384 to 512; on
    talking.mp4 (one woman, the frame's height) they stay at 384."""
    import cv2
    import numpy as np

    from beenet.inference.pose.backends import make_pose_backend
    from footage import footage_frame

    def run(clip: str, small: bool) -> set[int]:
        pose = make_pose_backend("mediapipe", person_size="auto", person_every=1)
        sizes: list[int] = []
        real = pose.runner.person
        pose.runner.person = lambda frame, *size: sizes.append(size[0] if size else real.size) or real(frame, *size)
        pose.reset()
        for i in range(100, 120, 2):
            frame = footage_frame(clip, i)
            if small:
                h, w = frame.shape[:2]
                half = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
                frame = np.zeros_like(frame)
                frame[: h // 2, : w // 2] = half
            pose(frame, i)
        assert pose.settings["person_size"] == "auto"
        pose.close()
        return set(sizes)

    assert run("vtest.avi", small=True) == {384, 512}
    assert run("talking.mp4", small=False) == {384}
