"""The model's inputs as numpy arrays, without torch: what predict feeds an exported (ONNX) model.

The same steps as :mod:`beenet.media.transforms` (training's), in numpy and Pillow:

- :func:`frames_array`: the whole frame resized to a square, antialiased bilinear on uint8
  (Pillow's resampling, from which torch's antialiased uint8 kernel was ported: they differ by at
  most one grey level, on about 0.1% of the pixels of a 720p frame; ``tests/test_arrays.py``), then
  ImageNet-normalised in float32 (the very arithmetic of :func:`~beenet.media.transforms.normalize`).
- :func:`crop_array`: the person's square crop, zero-padded outside the frame, resized in float
  (equal to torch's to float rounding).
- :func:`skeleton_arrays`: the skeleton normalisation, the one implementation (the torch
  function wraps it).
"""

from __future__ import annotations

import numpy as np

from beenet.labels import MIN_KEYPOINT_CONFIDENCE, NUM_JOINTS, OPENPOSE_CENTER

#: ImageNet mean and standard deviation per channel (RGB), the normalisation every frame gets.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)

Box = tuple[float, float, float, float]  # x, y, w, h in pixels


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame of shape [H, W, 3], got {frame.dtype} {frame.shape}")
    return frame


def normalize_array(chw: np.ndarray) -> np.ndarray:
    """ImageNet normalisation of float32 ``[3, H, W]`` values in [0, 1]."""
    return (chw - _MEAN) / _STD


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[size, size, 3]`` uint8, antialiased bilinear (the frame itself
    when it is at the size already)."""
    frame = _check_frame(frame)
    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    from PIL import Image  # lazy: not before pass 1's first frame (docs/predict.md, "Start-up")

    return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((size, size), Image.BILINEAR))


def frames_array(frame: np.ndarray, size: int) -> np.ndarray:
    """A whole frame ``[H, W, 3]`` uint8 -> float32 ``[3, size, size]``, normalised: the frame
    resized (not cropped) to a square, as BEE-NET reads it."""
    x = resize_frame(frame, size).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(normalize_array(x))


def crop_array(frame: np.ndarray, box: Box | None, size: int) -> np.ndarray:
    """A person-centred crop -> float32 ``[3, size, size]``, normalised: the box made square around
    its centre, zero outside the frame, resized. ``box=None``: the whole frame."""
    frame = _check_frame(frame)
    if box is None:
        return frames_array(frame, size)
    H, W = frame.shape[:2]
    bx, by, bw, bh = box
    side = max(bw, bh)
    cx, cy = bx + bw / 2.0, by + bh / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    square = np.zeros((s, s, 3), dtype=np.float32)
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x0 + s), min(H, y0 + s)
    if fx1 > fx0 and fy1 > fy0:
        square[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    square /= np.float32(255.0)
    if s != size:
        from PIL import Image  # lazy: not before pass 1's first frame (docs/predict.md, "Start-up")

        square = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(square[..., c]), mode="F")
                                      .resize((size, size), Image.BILINEAR)) for c in range(3)], axis=-1)
    return np.ascontiguousarray(normalize_array(square.transpose(2, 0, 1).astype(np.float32)))


def box_from_keypoints(
    keypoints: np.ndarray,
    width: int,
    height: int,
    margin: float = 0.15,
    min_confidence: float = MIN_KEYPOINT_CONFIDENCE,
) -> Box | None:
    """Person box ``(x, y, w, h)`` around every valid keypoint of ``[..., 18, 3]``, enlarged by
    ``margin`` of its size on each side and clipped to the frame. ``None`` when no keypoint is valid.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    ok = np.isfinite(kp[:, 0]) & np.isfinite(kp[:, 1]) & (kp[:, 2] >= min_confidence)
    if not ok.any():
        return None
    xs, ys = kp[ok, 0], kp[ok, 1]
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    x0, x1 = x0 - margin * w, x1 + margin * w
    y0, y1 = y0 - margin * h, y1 + margin * h
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(width), x1), min(float(height), y1)
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def skeleton_arrays(keypoints: np.ndarray,
                    min_confidence: float = MIN_KEYPOINT_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Per-instance skeleton normalisation: ``[T, 18, 3]`` pixels -> (float32 ``[T, 18, 3]``, bool
    mask ``[T, 18]``).

    x and y are centred on the instance's mean neck position (mean of all valid joints when the
    neck is never seen) and divided by the instance's median body height, so that the ST-GCN
    sees posture and motion, not where the person stands or how far from the camera. The third
    channel keeps the confidence. Missing joints (NaN, or confidence below ``min_confidence``)
    become zeros with ``mask`` False.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected keypoints of shape [T, {NUM_JOINTS}, 3], got {kp.shape}")
    conf = np.nan_to_num(kp[..., 2], nan=0.0)
    mask = np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1]) & (conf >= min_confidence)
    out = np.zeros(kp.shape, dtype=np.float32)
    if mask.any():
        neck = mask[:, OPENPOSE_CENTER]
        if neck.any():
            centre = kp[neck, OPENPOSE_CENTER, :2].mean(axis=0)
        else:
            centre = kp[mask][:, :2].mean(axis=0)
        heights = []
        for t in range(kp.shape[0]):
            if mask[t].sum() >= 2:
                ys = kp[t, mask[t], 1]
                xs = kp[t, mask[t], 0]
                heights.append(max(ys.max() - ys.min(), xs.max() - xs.min()))
        scale = float(np.median(heights)) if heights else 1.0
        scale = scale if scale > 1e-6 else 1.0
        xy = (kp[..., :2] - centre) / scale
        out[..., :2] = np.where(mask[..., None], xy, 0.0)
        out[..., 2] = np.where(mask, conf, 0.0)
    return out, mask
