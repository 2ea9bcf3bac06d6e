"""Person detection and 2-D pose behind one small interface, in BoLD's OpenPose-18 layout.

Every backend turns one RGB frame into a list of :class:`PoseDetection` (18 keypoints in pixels,
a box, a score). The models were trained on OpenPose COCO-18 joints (BoLD's joints files), so each
backend maps its own skeleton onto that layout here, once:

- :class:`~beenet.inference.pose_mediapipe.MediaPipeMultiPose` (``mediapipe``, the default): BlazePose
  (33 landmarks) through mediapipe's Tasks ``PoseLandmarker``, offline, several people per frame.
- :class:`MediaPipePose` (``mediapipe-single``): BlazePose through ``mp.solutions.pose`` (mediapipe
  0.10.21 only), offline, one person per frame.
- :class:`KeypointRCNNPose`: torchvision's Keypoint R-CNN (COCO-17), several people per frame.
- :class:`PrecomputedPose`: keypoints a user already has (BoLD joints ``.npy`` or OpenPose JSON).

A new backend is a class with ``name``, ``needs_pixels``, ``__call__(frame, index)`` and
``reset()`` (the :class:`PoseBackend` protocol) plus one builder in :data:`POSE_BACKENDS`; the
Predictor and ``beenet predict --pose`` read the names from that table.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from beenet.errors import BeenetError, BoLDFormatError, DataNotFoundError
from beenet.labels import MIN_KEYPOINT_CONFIDENCE, NUM_JOINTS

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x, y, w, h in pixels

#: OpenPose-18 joint <- mediapipe landmark (neck: mean of the shoulders, filled in separately).
MEDIAPIPE_TO_OPENPOSE: tuple[int | None, ...] = (
    0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7,
)
#: OpenPose-18 joint <- COCO-17 keypoint (neck: mean of the shoulders 5 and 6).
COCO17_TO_OPENPOSE: tuple[int | None, ...] = (
    0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3,
)
#: OpenPose-18 joint <- OpenPose BODY_25 keypoint (BODY_25 adds MidHip at 8 and 6 foot points).
BODY25_TO_OPENPOSE: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
_SHOULDERS = {"mediapipe": (11, 12), "coco17": (5, 6)}


@dataclass
class PoseDetection:
    """One person in one frame.

    ``keypoints`` is float32 ``[18, 3]`` (x, y in pixels, confidence), NaN x/y and 0 confidence for
    missing joints; ``box`` is ``(x, y, w, h)``; ``track_id`` is set only when the source already
    knows who is who (BoLD joints files), and then tracking keeps it; ``appearance`` is what the
    person looks like (:func:`beenet.inference.appearance.appearance`, set by the predictor from
    the frame), which the tracker uses to join one person's tracks.
    """

    keypoints: np.ndarray
    box: Box
    score: float
    track_id: int | None = None
    appearance: np.ndarray | None = None


@runtime_checkable
class PoseBackend(Protocol):
    """``backend(frame, index) -> detections``; ``reset()`` before each new video. A backend that
    carries people from frame to frame may also have ``new_shot()``, which the predictor calls at
    each shot cut (:func:`shot_cut`)."""

    name: str
    #: False when the backend never looks at the pixels (precomputed keypoints): decoding is skipped.
    needs_pixels: bool

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]: ...

    def reset(self) -> None: ...


class PoseOptionError(BeenetError, ValueError):
    """A pose backend option that does not exist, or has a value of the wrong kind or range."""


def shot_cut(backend: PoseBackend) -> None:
    """Tell ``backend`` that the next frame starts a new shot (when it has ``new_shot``)."""
    new_shot = getattr(backend, "new_shot", None)
    if callable(new_shot):
        new_shot()


def valid_mask(keypoints: np.ndarray, min_confidence: float = MIN_KEYPOINT_CONFIDENCE) -> np.ndarray:
    """True for joints with finite x, y and confidence at least ``min_confidence``."""
    kp = np.asarray(keypoints)
    return np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1]) & (np.nan_to_num(kp[..., 2]) >= min_confidence)


def keypoint_box(keypoints: np.ndarray, min_confidence: float = MIN_KEYPOINT_CONFIDENCE) -> Box | None:
    """Tight ``(x, y, w, h)`` around the valid joints of ``[18, 3]``; None when fewer than two."""
    ok = valid_mask(keypoints, min_confidence)
    if ok.sum() < 2:
        return None
    xs, ys = keypoints[ok, 0], keypoints[ok, 1]
    return (float(xs.min()), float(ys.min()), float(max(xs.max() - xs.min(), 1.0)), float(max(ys.max() - ys.min(), 1.0)))


def _map_keypoints(src: np.ndarray, table: Sequence[int | None], shoulders: tuple[int, int] | None) -> np.ndarray:
    """Pick rows of ``src`` ``[K, 3]`` into OpenPose-18 order; the neck is the mid-shoulders."""
    out = np.full((NUM_JOINTS, 3), np.nan, dtype=np.float32)
    out[:, 2] = 0.0
    for j, k in enumerate(table):
        if k is not None:
            out[j] = src[k]
    if shoulders is not None:
        a, b = src[shoulders[0]], src[shoulders[1]]
        if np.isfinite(a[:2]).all() and np.isfinite(b[:2]).all():
            out[1, :2] = (a[:2] + b[:2]) / 2.0
            out[1, 2] = min(float(a[2]), float(b[2]))
    missing = ~valid_mask(out, 1e-12) | ~np.isfinite(out[:, 2])
    out[missing, :2] = np.nan
    out[missing, 2] = 0.0
    return out


def mediapipe_to_openpose(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """BlazePose ``[33, 3]`` (x, y normalised to [0, 1], visibility) -> OpenPose-18 in pixels.

    Landmarks that BlazePose extrapolates outside the frame are dropped (OpenPose would not see
    them), so the skeleton stream sees the same kind of gaps as in BoLD.
    """
    lm = np.asarray(landmarks, dtype=np.float32).reshape(33, 3).copy()
    lm[:, 0] *= width
    lm[:, 1] *= height
    outside = (lm[:, 0] < 0) | (lm[:, 0] > width - 1) | (lm[:, 1] < 0) | (lm[:, 1] > height - 1)
    lm[outside, 2] = 0.0
    return _map_keypoints(lm, MEDIAPIPE_TO_OPENPOSE, _SHOULDERS["mediapipe"])


def coco17_to_openpose(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17 ``[17, 3]`` (x, y pixels, confidence) -> OpenPose-18."""
    kp = np.asarray(keypoints, dtype=np.float32).reshape(17, 3)
    return _map_keypoints(kp, COCO17_TO_OPENPOSE, _SHOULDERS["coco17"])


def openpose_flat_to_18(flat: Sequence[float], source: str | Path = "<keypoints>") -> np.ndarray:
    """An OpenPose ``pose_keypoints_2d`` list (COCO-18: 54 values, BODY_25: 75) -> ``[18, 3]``.

    OpenPose writes (0, 0, 0) for joints it did not find; those become NaN with confidence 0.
    """
    arr = np.asarray(flat, dtype=np.float32)
    if arr.size == NUM_JOINTS * 3:
        kp = arr.reshape(NUM_JOINTS, 3).copy()
    elif arr.size == 25 * 3:
        kp = arr.reshape(25, 3)[list(BODY25_TO_OPENPOSE)].copy()
    else:
        raise BoLDFormatError(
            source, None,
            f"pose_keypoints_2d has {arr.size} values; expected 54 (COCO-18) or 75 (BODY_25). "
            "Run OpenPose with --model_pose COCO or BODY_25.",
        )
    missing = (kp[:, 2] < MIN_KEYPOINT_CONFIDENCE) | ((kp[:, 0] == 0) & (kp[:, 1] == 0))
    kp[missing, :2] = np.nan
    kp[missing, 2] = 0.0
    return kp


def detection_from_keypoints(keypoints: np.ndarray, score: float | None = None,
                             track_id: int | None = None) -> PoseDetection | None:
    """A :class:`PoseDetection` whose box is the tight box of its joints; None when under two."""
    box = keypoint_box(keypoints)
    if box is None:
        return None
    ok = valid_mask(keypoints)
    s = float(np.mean(keypoints[ok, 2])) if score is None else float(score)
    return PoseDetection(keypoints.astype(np.float32), box, s, track_id)


class MediaPipePose:
    """mediapipe BlazePose (``mp.solutions.pose``), one person per frame, runs offline
    (``--pose mediapipe-single``; the multi-person ``mediapipe`` backend is the default).

    Only ``model_complexity=1`` ships inside the wheel (0 and 2 download their model on first use),
    so that is what is used. Video mode (``static_image_mode=False``) tracks the person from frame
    to frame, which is both faster and steadier; :meth:`reset` starts a new video.
    """

    name = "mediapipe-single"
    needs_pixels = True

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 static_image_mode: bool = False) -> None:
        from beenet.inference.pose_mediapipe import import_mediapipe

        mp = import_mediapipe("the 'mediapipe-single' pose backend needs mediapipe 0.10.21 (or use --pose rcnn)")
        if not hasattr(mp, "solutions"):
            raise BeenetError(
                f"the 'mediapipe-single' pose backend needs mp.solutions, which mediapipe {mp.__version__} "
                "no longer has (only 0.10.21 and older, Python <= 3.12, have it); use --pose mediapipe "
                "(several people, works with this release)"
            )
        self._mp = mp
        self._kwargs = dict(
            static_image_mode=static_image_mode, model_complexity=1, smooth_landmarks=True,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._pose = None

    @property
    def settings(self) -> dict:
        """The solution's options (recorded in a table's metadata)."""
        return dict(self._kwargs)

    def reset(self) -> None:
        if self._pose is not None:
            self._pose.close()
        self._pose = self._mp.solutions.pose.Pose(**self._kwargs)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]:
        if frame is None:
            raise ValueError("MediaPipePose needs the frame's pixels")
        if self._pose is None:
            self.reset()
        result = self._pose.process(np.ascontiguousarray(frame))
        if result.pose_landmarks is None:
            return []
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float32)
        kp = mediapipe_to_openpose(lm, frame.shape[1], frame.shape[0])
        det = detection_from_keypoints(kp)
        return [] if det is None else [det]


class KeypointRCNNPose:
    """torchvision Keypoint R-CNN (ResNet-50 FPN, COCO-17 keypoints): every person in the frame.

    ``weights="DEFAULT"`` (or ``"COCO_V1"`` / ``"COCO_LEGACY"``) loads torchvision's COCO weights:
    downloaded once into ``cache_dir`` (default torch hub's checkpoint folder), read with
    ``weights_only=True`` into the network torchvision builds for them; :attr:`weights_record`
    then names the file and its SHA-256. ``weights=None`` builds a randomly initialised network
    (tests only: it finds nobody real). Keypoint scores are heat-map logits, mapped to (0, 1) with
    a sigmoid to serve as confidences.
    """

    name = "rcnn"
    needs_pixels = True

    def __init__(self, weights: str | None = "DEFAULT", device: str = "cpu",
                 score_threshold: float = 0.7, max_size: int = 800,
                 cache_dir: str | Path | None = None) -> None:
        import torch
        from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights

        from beenet.weights import build_torchvision_detector, load_published

        w = None if weights is None else KeypointRCNN_ResNet50_FPN_Weights.verify(weights)
        self.model = build_torchvision_detector(
            "keypointrcnn_resnet50_fpn", w, min_size=min(640, max_size), max_size=max_size
        )
        #: The weights file the network was loaded from (None: random init).
        self.weights_record = None
        if w is not None:
            self.weights_record = load_published(
                self.model, w.url, "Keypoint R-CNN weights", cache_dir=cache_dir,
                offline_hint="or use --pose mediapipe (no download needed)",
            )
        self.device = torch.device(device)
        self.model.eval().requires_grad_(False).to(self.device)
        self.score_threshold = score_threshold

    def reset(self) -> None:
        """Keypoint R-CNN has no state across frames."""

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]:
        import torch

        if frame is None:
            raise ValueError("KeypointRCNNPose needs the frame's pixels")
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(255.0)
        with torch.inference_mode():
            out = self.model([x.to(self.device)])[0]
        dets: list[PoseDetection] = []
        for label, score, kps, kscores in zip(
            out["labels"].cpu().numpy(), out["scores"].cpu().numpy(),
            out["keypoints"].cpu().numpy(), out["keypoints_scores"].cpu().numpy(),
        ):
            if int(label) != 1 or float(score) < self.score_threshold:
                continue
            coco = np.concatenate([kps[:, :2], 1.0 / (1.0 + np.exp(-kscores[:, None]))], axis=1)
            det = detection_from_keypoints(coco17_to_openpose(coco), score=float(score))
            if det is not None:
                dets.append(det)
        return dets


@dataclass
class PrecomputedPose:
    """Keypoints a user already has: ``frames[frame_index] -> detections`` (no pixels needed)."""

    frames: dict[int, list[PoseDetection]]
    source: str = "<precomputed>"
    name: str = "precomputed"
    needs_pixels: bool = False
    num_frames: int = field(init=False)

    def __post_init__(self) -> None:
        self.num_frames = max(self.frames, default=-1) + 1

    def reset(self) -> None:
        """Nothing to reset: the keypoints are fixed."""

    def __call__(self, frame: np.ndarray | None = None, index: int | None = None) -> list[PoseDetection]:
        if index is None:
            raise ValueError("PrecomputedPose needs the frame index")
        return list(self.frames.get(int(index), ()))

    def check_matches(self, num_frames: int, width: int, height: int, video: str | Path) -> None:
        """Raise when the keypoints cannot belong to this video (more frames, or joints off-frame).

        A joints file beside the wrong video is the usual cause; the message names both files.
        """
        if self.num_frames > num_frames:
            raise BoLDFormatError(
                self.source, None,
                f"keypoints reach frame {self.num_frames - 1} but {video} has only {num_frames} frames; "
                "the keypoints do not belong to this video (check the file names).",
            )
        pts = [d.keypoints[valid_mask(d.keypoints)] for dets in self.frames.values() for d in dets]
        pts = [p for p in pts if len(p)]
        if not pts:
            raise BoLDFormatError(self.source, None, "no valid keypoint in the whole file")
        xy = np.concatenate(pts)[:, :2]
        slack = 0.05
        outside = ((xy[:, 0] < -slack * width) | (xy[:, 0] > (1 + slack) * width)
                   | (xy[:, 1] < -slack * height) | (xy[:, 1] > (1 + slack) * height))
        if outside.mean() > 0.05:
            raise BoLDFormatError(
                self.source, None,
                f"{100 * outside.mean():.0f}% of the keypoints lie outside the {width}x{height} frames "
                f"of {video}; the keypoints do not belong to this video (or use another resolution).",
            )

    @classmethod
    def from_bold_joints(cls, path: str | Path, num_frames: int | None = None) -> "PrecomputedPose":
        """A BoLD joints ``.npy`` (``[frame, person_id, x0, y0, c0, ...]`` rows), person ids kept.

        ``num_frames``: the video's frame count. Frames count from the file's first frame; a row
        past the video's end is refused with its index (a corrupt frame number such as 4e12 must
        not make the frame axis, and the memory, that long).
        """
        from beenet.data.joints import load_clip_joints, load_joints_array

        if num_frames is not None:
            arr = load_joints_array(path)
            if len(arr):
                first = int(np.argmin(arr[:, 0]))
                offset = arr[first, 0]
                past = np.flatnonzero(arr[:, 0] - offset >= num_frames)
                if len(past):
                    row = int(past[np.argmax(arr[past, 0])])
                    raise BoLDFormatError(
                        path, None,
                        f"row {row}: frame {arr[row, 0]:.0f} lies {arr[row, 0] - offset:.0f} frames after the "
                        f"file's first frame {offset:.0f} (row {first}), but the video has {num_frames} frames "
                        f"({len(past)} row(s) lie past its end); the keypoints do not belong to this video, "
                        "or a frame number is corrupt",
                    )
        people = load_clip_joints(path, num_frames)
        frames: dict[int, list[PoseDetection]] = {}
        for pid, pj in people.items():
            kp = np.asarray(pj.keypoints, dtype=np.float32)
            present = np.asarray(pj.present, dtype=bool)
            for t in np.flatnonzero(present):
                det = detection_from_keypoints(kp[t], track_id=int(pid))
                if det is not None:
                    frames.setdefault(int(t), []).append(det)
        return cls(frames, source=str(path))

    @classmethod
    def from_openpose_json(cls, folder: str | Path) -> "PrecomputedPose":
        """A folder of OpenPose per-frame ``*_keypoints.json`` files (COCO-18 or BODY_25).

        The frame index is the number just before ``_keypoints.json`` (OpenPose's own naming);
        files without one are numbered in sorted order. People get ids from the tracker.
        """
        folder = Path(folder)
        files = sorted(folder.glob("*_keypoints.json"))
        if not files:
            raise DataNotFoundError(f"{folder}: no OpenPose '*_keypoints.json' file in this folder")
        numbered = [re.search(r"(\d+)_keypoints\.json$", f.name) for f in files]
        use_numbers = all(m is not None for m in numbered)
        indices = [int(m.group(1)) for m in numbered] if use_numbers else list(range(len(files)))
        if use_numbers:
            base = min(indices)
            indices = [i - base for i in indices]
        frames: dict[int, list[PoseDetection]] = {}
        for idx, f in zip(indices, files):
            try:
                doc = json.loads(f.read_text())
                people = doc["people"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise BoLDFormatError(f, None, f"not an OpenPose keypoints JSON ({exc})") from exc
            for person in people:
                if "pose_keypoints_2d" not in person:
                    raise BoLDFormatError(f, None, "a person without 'pose_keypoints_2d'")
                det = detection_from_keypoints(openpose_flat_to_18(person["pose_keypoints_2d"], f))
                if det is not None:
                    frames.setdefault(idx, []).append(det)
        return cls(frames, source=str(folder))


def mediapipe_available() -> bool:
    """Whether the ``mediapipe`` backend can run here: mediapipe's Tasks API imports and the two
    BlazePose model files are found (in the package or the beenet cache)."""
    try:
        from mediapipe.tasks.python import vision  # noqa: F401

        from beenet.inference.pose_mediapipe import find_model_files

        find_model_files()
    except (ImportError, BeenetError):
        return False
    return True


def _mediapipe(device: str, weights: str | None, **options) -> PoseBackend:
    from beenet.inference.pose_mediapipe import MediaPipeMultiPose

    return MediaPipeMultiPose(**options)  # runs on the CPU, offline


def _mediapipe_single(device: str, weights: str | None, **options) -> PoseBackend:
    return MediaPipePose(**options)  # runs on the CPU, with the model bundled in mediapipe 0.10.21


def _rcnn(device: str, weights: str | None, **options) -> PoseBackend:
    return KeypointRCNNPose(weights=weights, device=device, **options)


#: Pose backends that look at pixels, by name: ``builder(device, weights, **options) -> PoseBackend``
#: (``options``: the backend class's keyword arguments, e.g. ``tiles`` for ``mediapipe``).
#: Precomputed keypoints come with their input, not from here.
POSE_BACKENDS: dict[str, Callable[..., PoseBackend]] = {
    "mediapipe": _mediapipe, "mediapipe-single": _mediapipe_single, "rcnn": _rcnn,
}
#: What ``Predictor(pose=...)`` and ``beenet predict --pose`` accept: ``auto`` or a backend name.
POSE_CHOICES: tuple[str, ...] = ("auto", *POSE_BACKENDS)


def make_pose_backend(name: str = "auto", device: str = "cpu", weights: str | None = "DEFAULT",
                      **options) -> PoseBackend:
    """The pose backend called ``name`` (one of :data:`POSE_CHOICES`); ``auto`` is mediapipe
    (multi-person) when it can run here, else rcnn. ``options`` go to the backend's class (e.g.
    ``tiles=2``, ``num_poses=6``, ``min_detection_confidence=0.7`` for ``mediapipe``)."""
    if name == "auto":
        name = "mediapipe" if mediapipe_available() else "rcnn"
    if name not in POSE_BACKENDS:
        raise BeenetError(f"unknown pose backend {name!r}; choose one of {', '.join(POSE_CHOICES)}")
    try:
        return POSE_BACKENDS[name](device, weights, **options)
    except TypeError as exc:
        found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if found is None:
            raise
        raise PoseOptionError(f"pose backend {name!r} does not take the option {found.group(1)!r}") from None
