"""Frame, crop and skeleton transforms shared by training (the dataset) and inference (predict).

Both paths must turn pixels and keypoints into tensors the same way, so they live here and only here.
Frames come in as uint8 ``[T, H, W, 3]`` RGB arrays (what :mod:`beenet.media.video` returns);
keypoints as float ``[T, 18, 3]`` arrays of (x, y, confidence) in pixels, NaN x/y where missing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from beenet.labels import MIN_KEYPOINT_CONFIDENCE
from beenet.media.arrays import IMAGENET_MEAN, IMAGENET_STD, Box, box_from_keypoints, skeleton_arrays  # noqa: F401


def _to_float_nchw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(frames)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected frames of shape [T, H, W, 3], got {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).float().div_(255.0)


_MEAN_STD: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def _mean_std(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std ``[3, 1, 1]`` on ``device``, made once per device and dtype: a new
    tensor copied to a GPU at every step would wait for the GPU (a blocking copy)."""
    key = (device, dtype)
    if key not in _MEAN_STD:
        _MEAN_STD[key] = (torch.tensor(IMAGENET_MEAN, dtype=dtype).view(3, 1, 1).to(device),
                          torch.tensor(IMAGENET_STD, dtype=dtype).view(3, 1, 1).to(device))
    return _MEAN_STD[key]


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of ``[..., 3, H, W]`` values in [0, 1]."""
    mean, std = _mean_std(x.device, x.dtype)
    return (x - mean) / std


def normalize_uint8(frames: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 ``[B, T, 3, H, W]`` frames as the dataset ships them -> float, normalised, on their
    own device: the very values :func:`frames_to_tensor` gives (bit for bit on the CPU).

    ``present`` (bool ``[B, T]``, the batch's ``frame_mask``) marks real frames; the padding
    frames after them become 0, as the float path pads. The model calls this first thing in its
    forward, so training, validation and ``predict_split`` normalise in one place, on the device,
    and the loader's workers and the host-to-device copy move 4x fewer bytes.
    """
    x = normalize(frames.float().div_(255.0))
    if present is not None:
        x = torch.where(present.view(*present.shape, *([1] * (x.ndim - present.ndim))), x, x.new_zeros(()))
    return x


def resize_uint8(frames: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """``[T, H, W, 3]`` uint8 -> ``[T, size, size, 3]`` uint8, antialiased bilinear.

    Resizing before the float conversion is about 15x cheaper on 720p frames than converting
    first, and every path (training, evaluation, predict) goes through here, so they see the very
    same pixels. Frames already at the size are returned as they are.
    """
    t = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected frames of shape [T, H, W, 3], got {tuple(t.shape)}")
    if t.shape[1] == size and t.shape[2] == size:
        return t
    x = t.permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.permute(0, 2, 3, 1).contiguous()


def frames_to_uint8(frames: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Whole frames -> uint8 ``[T, 3, size, size]`` (:func:`resize_uint8`, channels first): what
    the dataset ships; :func:`normalize_uint8` then gives :func:`frames_to_tensor`'s values."""
    return resize_uint8(frames, size).permute(0, 3, 1, 2).contiguous()


def frames_to_tensor(frames: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Whole frames -> ``[T, 3, size, size]`` float, normalised.

    The whole frame is resized (not cropped) to a square, as BEE-NET does: the scene around the
    person is the context the model learns from, so none of it is cut away.
    """
    return normalize(_to_float_nchw(resize_uint8(frames, size))).contiguous()


def crop_to_tensor(frames: np.ndarray | torch.Tensor, box: Box | None, size: int) -> torch.Tensor:
    """Person-centred crops -> ``[T, 3, size, size]`` float, normalised.

    The box is made square around its centre (so the body keeps its proportions), the part outside
    the frame is zero-padded, and the crop is resized. ``box=None`` falls back to the whole frame.
    """
    x = _to_float_nchw(frames)
    _, _, H, W = x.shape
    if box is None:
        return frames_to_tensor(frames, size)
    bx, by, bw, bh = box
    side = max(bw, bh)
    cx, cy = bx + bw / 2.0, by + bh / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    pad_l, pad_t = max(0, -x0), max(0, -y0)
    pad_r, pad_b = max(0, x0 + s - W), max(0, y0 + s - H)
    x = F.pad(x, (pad_l, pad_r, pad_t, pad_b))
    x = x[:, :, y0 + pad_t : y0 + pad_t + s, x0 + pad_l : x0 + pad_l + s]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return normalize(x).contiguous()


def normalize_skeleton(
    keypoints: np.ndarray, min_confidence: float = MIN_KEYPOINT_CONFIDENCE
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`beenet.media.arrays.skeleton_arrays` as tensors: ``[T, 18, 3]`` pixels -> (``[T, 18,
    3]`` centred on the neck and scaled by the body height, mask ``[T, 18]``)."""
    out, mask = skeleton_arrays(keypoints, min_confidence)
    return torch.from_numpy(out), torch.from_numpy(mask)
