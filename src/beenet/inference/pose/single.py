"""``--pose mediapipe-single``: BlazePose through ``mp.solutions.pose`` (mediapipe 0.10.21 only),
offline, one person per frame."""

from __future__ import annotations

from typing import Any

import numpy as np

from beenet.errors import BeenetError
from beenet.inference.pose.base import PoseBackendBase
from beenet.inference.pose.keypoints import PoseDetection, detection_from_keypoints, mediapipe_to_openpose
from beenet.inference.pose.runtime import INSTALL_HINT, import_mediapipe


class MediaPipePose(PoseBackendBase):
    """mediapipe BlazePose (``mp.solutions.pose``), one person per frame, runs offline
    (``--pose mediapipe-single``; the multi-person ``mediapipe`` backend is the default).

    Only ``model_complexity=1`` ships inside the wheel (0 and 2 download their model on first use),
    so that is what is used. Video mode (``static_image_mode=False``) tracks the person from frame
    to frame, which is both faster and steadier; :meth:`reset` starts a new video.
    """

    name = "mediapipe-single"
    needs_pixels = True
    install_hint = INSTALL_HINT

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 static_image_mode: bool = False) -> None:
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
    def settings(self) -> dict[str, Any]:
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
