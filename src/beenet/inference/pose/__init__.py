"""Person detection and 2-D pose behind one small interface, in BoLD's OpenPose-18 layout.

Every backend turns one RGB frame into a list of :class:`PoseDetection` (18 keypoints in pixels,
a box, a score); each maps its own skeleton onto that layout (:mod:`.keypoints`). The backends
that look at pixels are in the table :data:`POSE_BACKENDS` (:mod:`.backends`):

- ``mediapipe`` (the default; :mod:`.multi`): BlazePose, the MediaPipe project's models, several
  people per frame, offline; the models run on LiteRT (``ai-edge-litert``; :mod:`.litert`,
  :mod:`.blazepose`), with HOG proposals (:mod:`.proposals`) and model files fetched on first use
  (:mod:`.models`, :mod:`beenet.model_files`). The ``mediapipe`` Python package is not needed.
- ``rcnn`` (:mod:`.rcnn`): torchvision's Keypoint R-CNN (COCO-17), several people per frame.

:class:`PrecomputedPose` (:mod:`.files`) serves keypoints a user already has (BoLD joints ``.npy``
or OpenPose JSON). What the predictor calls on a backend is the :class:`PoseBackend` protocol
(:mod:`.base`); options (``--pose-option KEY=VALUE``) are typed by :mod:`.options`.
``python -m beenet.inference.pose check`` fetches the models when missing and runs them once
(``beenet models fetch`` fetches them ahead of time).
"""

from beenet.inference.pose.backends import (
    POSE_BACKENDS,
    POSE_CHOICES,
    blazepose_available,
    make_pose_backend,
    mediapipe_available,
    resolve_backend_name,
)
from beenet.inference.pose.base import PoseBackend, PoseBackendBase, shot_cut
from beenet.inference.pose.boxes import Box, box_iou
from beenet.inference.pose.files import PrecomputedPose
from beenet.inference.pose.keypoints import (
    BODY25_TO_OPENPOSE,
    COCO17_TO_OPENPOSE,
    MEDIAPIPE_TO_OPENPOSE,
    PoseDetection,
    coco17_to_openpose,
    detection_from_keypoints,
    is_unposed,
    keypoint_box,
    mediapipe_to_openpose,
    openpose_flat_to_18,
    valid_mask,
)
from beenet.inference.pose.multi import DETECTORS, ENGINES, MediaPipeMultiPose
from beenet.inference.pose.options import PoseOptionError, parse_pose_option
from beenet.inference.pose.rcnn import KeypointRCNNPose
from beenet.inference.pose.runtime import INSTALL_HINT

__all__ = [
    "BODY25_TO_OPENPOSE", "COCO17_TO_OPENPOSE", "DETECTORS", "ENGINES", "INSTALL_HINT", "MEDIAPIPE_TO_OPENPOSE",
    "POSE_BACKENDS", "POSE_CHOICES", "Box", "KeypointRCNNPose", "MediaPipeMultiPose",
    "PoseBackend", "PoseBackendBase", "PoseDetection", "PoseOptionError", "PrecomputedPose", "blazepose_available",
    "box_iou",
    "coco17_to_openpose", "detection_from_keypoints", "is_unposed", "keypoint_box", "make_pose_backend",
    "mediapipe_available", "mediapipe_to_openpose", "openpose_flat_to_18", "parse_pose_option",
    "resolve_backend_name", "shot_cut", "valid_mask",
]
