"""Several people per frame from mediapipe 0.10.21's Tasks ``PoseLandmarker`` (a prototype for the
tracking benchmark and tests; the real multi-person backend lives in ``beenet.inference.pose``).

The wheel's BlazePose models lack the normalisation metadata the Tasks API needs; the wheel's own
metadata writers add it, and the two models are bundled into a ``.task`` file in a temp folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from beenet.inference.pose import (
    PoseDetection,
    detection_from_keypoints,
    mediapipe_to_openpose,
)


def _bundle(folder: Path) -> Path:
    import mediapipe as mp
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
        model_asset_bundle_utils,
    )

    root = Path(mp.__file__).parent / "modules"

    def write(src: Path, mean: float, std: float, n_out: int) -> bytes:
        w = metadata_writer.MetadataWriter.create(bytearray(src.read_bytes()))
        w = w.add_image_input(norm_mean=[mean], norm_std=[std])
        for _ in range(n_out):
            w.add_feature_output()
        return w.populate()[0]

    out = folder / "pose.task"
    model_asset_bundle_utils.create_model_asset_bundle(
        {"pose_detector.tflite": write(root / "pose_detection/pose_detection.tflite", 127.5, 127.5, 2),
         "pose_landmarks_detector.tflite": write(root / "pose_landmark/pose_landmark_full.tflite", 0.0, 255.0, 5)},
        str(out))
    return out


class MultiPoseTasks:
    """A :class:`~beenet.inference.pose.PoseBackend`: up to ``num_poses`` people per frame."""

    name = "mediapipe-tasks"
    needs_pixels = True

    def __init__(self, num_poses: int = 6, fps: float = 25.0, min_confidence: float = 0.5) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        self.num_poses, self.fps, self.min_confidence = num_poses, fps, min_confidence
        self._dir = tempfile.mkdtemp(prefix="beenet-mp-")
        self._task = _bundle(Path(self._dir))
        self._lm = None
        self._t = 0

    def reset(self) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        if self._lm is not None:
            self._lm.close()
        opts = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self._task)), running_mode=vision.RunningMode.VIDEO,
            num_poses=self.num_poses, min_pose_detection_confidence=self.min_confidence,
            min_pose_presence_confidence=self.min_confidence, min_tracking_confidence=self.min_confidence)
        self._lm = vision.PoseLandmarker.create_from_options(opts)
        self._t = 0

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]:
        import mediapipe as mp

        if self._lm is None:
            self.reset()
        i = self._t if index is None else int(index)
        ts = max(self._t, int(i * 1000 / self.fps))
        self._t = ts + 1
        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        res = self._lm.detect_for_video(img, ts)
        out = []
        for pose in res.pose_landmarks:
            lm = np.array([(p.x, p.y, p.visibility) for p in pose], dtype=np.float32)
            det = detection_from_keypoints(mediapipe_to_openpose(lm, frame.shape[1], frame.shape[0]))
            if det is not None:
                out.append(det)
        return out
