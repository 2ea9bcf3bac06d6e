"""The table of pose backends that look at pixels, by name, and :func:`make_pose_backend`.

Adding a backend is one new file and one line here: a module ``pose/<name>.py`` with a class that
subclasses :class:`~beenet.inference.pose.base.PoseBackendBase` (``name``, ``install_hint``,
``__call__``; its keyword arguments are its ``--pose-option`` options, typed by their hints), and
its entry in :data:`POSE_BACKENDS` (with the module's import above it). ``beenet predict --pose``
and ``Predictor(pose=...)`` read the names from the table. Precomputed keypoints come with their
input (:class:`~beenet.inference.pose.files.PrecomputedPose`), not from here.
"""

from __future__ import annotations

from typing import Any

from beenet.errors import BeenetError
from beenet.inference.pose.base import PoseBackend, PoseBackendBase
from beenet.inference.pose.multi import MediaPipeMultiPose
from beenet.inference.pose.options import typed_options
from beenet.inference.pose.rcnn import KeypointRCNNPose
from beenet.inference.pose.runtime import litert_available

#: Pose backends that look at pixels, by name: the class, whose ``build(device, weights,
#: **options)`` makes one (``options``: the class's keyword arguments, e.g. ``tiles`` for
#: ``mediapipe``).
POSE_BACKENDS: dict[str, type[PoseBackendBase]] = {
    "mediapipe": MediaPipeMultiPose,  # BlazePose (the MediaPipe project's models) on LiteRT, on the CPU
    "rcnn": KeypointRCNNPose,
}
#: What ``Predictor(pose=...)`` and ``beenet predict --pose`` accept: ``auto`` or a backend name.
POSE_CHOICES: tuple[str, ...] = ("auto", *POSE_BACKENDS)


def blazepose_available() -> bool:
    """Whether the ``mediapipe`` backend's runtime is here: ``ai-edge-litert`` imports. Its model
    files are not looked for: they are fetched on first use, and when that fails its error says
    what to download (``auto`` does not turn it into another backend silently)."""
    return litert_available()


#: The old name of :func:`blazepose_available` (it no longer looks for the mediapipe package).
mediapipe_available = blazepose_available


def resolve_backend_name(name: str) -> str:
    """``auto`` as the backend it means here (mediapipe, multi-person, when ``ai-edge-litert``
    imports, else rcnn); any other name as it is."""
    if name == "auto":
        return "mediapipe" if blazepose_available() else "rcnn"
    return name


def make_pose_backend(name: str = "auto", device: str = "cpu", weights: str | None = "DEFAULT",
                      **options: Any) -> PoseBackend:
    """The pose backend called ``name`` (one of :data:`POSE_CHOICES`); ``auto`` is mediapipe
    (multi-person) when ``ai-edge-litert`` imports here, else rcnn. ``options`` go to the backend's class, each
    read as the type it declares (e.g. ``tiles=2``, ``num_poses=6``,
    ``min_detection_confidence=0.7`` for ``mediapipe``); one it does not take raises
    :class:`~beenet.inference.pose.options.PoseOptionError`."""
    name = resolve_backend_name(name)
    if name not in POSE_BACKENDS:
        raise BeenetError(f"unknown pose backend {name!r}; choose one of {', '.join(POSE_CHOICES)}")
    backend = POSE_BACKENDS[name]
    return backend.build(device, weights, **typed_options(backend, name, options))
