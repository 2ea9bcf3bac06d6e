"""The model's inputs in numpy (beenet.media.arrays, what the ONNX engine is fed, no torch) against
training's torch transforms (beenet.media.transforms): the same values, to one grey level for
whole frames (Pillow's antialiased resize against torch's port of it) and to float rounding for
crops and skeletons, on real footage and on random frames of odd sizes."""

from __future__ import annotations

import numpy as np
import pytest

from beenet.media.arrays import IMAGENET_STD, crop_array, frames_array, resize_frame, skeleton_arrays
from beenet.media.transforms import crop_to_tensor, frames_to_tensor, normalize_skeleton, resize_uint8
from footage import clip_frames

#: One grey level, after the normalisation (the largest channel gain is 1 / min std).
ONE_LEVEL = 1.0 / 255.0 / min(IMAGENET_STD) + 1e-6


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    real = list(clip_frames("vtest.avi", 0, 2).frames)
    return real + [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((333, 517, 3), (90, 100, 3), (112, 112, 3))]


@pytest.mark.parametrize("size", [112, 224])
def test_whole_frames_match_the_torch_transform_to_one_grey_level(size):
    for frame in _frames():
        ours = resize_frame(frame, size)
        theirs = resize_uint8(frame[None], size)[0].numpy()
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert ours.shape == theirs.shape and ours.dtype == np.uint8
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02, frame.shape
        a, b = frames_array(frame, size), frames_to_tensor(frame[None], size)[0].numpy()
        assert a.dtype == np.float32 and a.shape == (3, size, size)
        assert np.abs(a - b).max() <= ONE_LEVEL


def test_the_normalisation_is_the_same_arithmetic_as_torch():
    """A frame already at the size is not resized: the values are bit for bit training's."""
    frame = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(frames_array(frame, 64), frames_to_tensor(frame[None], 64)[0].numpy())


@pytest.mark.parametrize("box", [(300.0, 100.0, 80.0, 200.0), (-40.0, -30.0, 120.0, 90.0), (700.0, 500.0, 200.0, 160.0),
                                 (10.0, 10.0, 4.0, 3.0), None])
def test_crops_match_the_torch_transform(box):
    """Inside the frame, over its edges (zero padding), tiny, and none (the whole frame)."""
    frame = _frames()[0]
    a, b = crop_array(frame, box, 112), crop_to_tensor(frame[None], box, 112)[0].numpy()
    assert a.shape == b.shape == (3, 112, 112) and a.dtype == np.float32
    tol = ONE_LEVEL if box is None else 1e-4
    assert np.abs(a - b).max() <= tol


def test_skeletons_are_the_same_function():
    rng = np.random.default_rng(2)
    kp = rng.uniform(0, 300, (6, 18, 3))
    kp[..., 2] = rng.uniform(0, 1, (6, 18))
    kp[2, 3, :2] = np.nan
    s, m = skeleton_arrays(kp)
    ts, tm = normalize_skeleton(kp)
    np.testing.assert_array_equal(s, ts.numpy())
    np.testing.assert_array_equal(m, tm.numpy())


def test_a_frame_that_is_not_rgb_uint8_is_refused():
    with pytest.raises(ValueError, match="uint8 frame"):
        frames_array(np.zeros((10, 10), np.uint8), 8)
    with pytest.raises(ValueError, match="uint8 frame"):
        crop_array(np.zeros((10, 10, 3), np.float32), (0, 0, 5, 5), 8)
