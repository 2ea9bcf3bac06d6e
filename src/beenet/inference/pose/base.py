"""What the predictor may call on a pose backend (:class:`PoseBackend`), and a base class
(:class:`PoseBackendBase`) that gives a backend the calls it does not need as no-ops.

A backend turns one RGB frame into a list of :class:`~beenet.inference.pose.keypoints.PoseDetection`
(18 OpenPose joints in pixels, a box, a score). The predictor builds a named backend with
:func:`beenet.inference.pose.make_pose_backend` (the table
:data:`~beenet.inference.pose.backends.POSE_BACKENDS`), calls ``reset()`` before each video,
``new_shot()`` at each shot cut, the backend itself on the frames, ``close()`` at the end, and
records ``name`` and ``settings`` in every table it writes.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from beenet.inference.pose.keypoints import PoseDetection


@runtime_checkable
class PoseBackend(Protocol):
    """``backend(frame, index) -> detections``; ``reset()`` before each new video, ``new_shot()``
    at each shot cut, ``close()`` when done (releases models and threads; ``reset()`` starts it
    again)."""

    #: The backend's name in tables and in ``--pose``.
    name: str
    #: False when the backend never looks at the pixels (precomputed keypoints): decoding is skipped.
    needs_pixels: bool
    #: What to install when the backend is missing (the advice of a setup error).
    install_hint: ClassVar[str]

    @property
    def settings(self) -> dict[str, Any]:
        """What the backend runs with (its thresholds and options), recorded in each table."""
        ...

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]: ...

    def reset(self) -> None: ...

    def new_shot(self) -> None: ...

    def close(self) -> None: ...


class PoseBackendBase:
    """A pose backend with nothing to start, forget or release: subclass it and write
    ``__call__`` (and ``name``, ``install_hint``); ``reset``, ``new_shot`` and ``close`` do nothing
    until overridden, and ``settings`` are the public scalar attributes of the instance.

    :meth:`build` is what :func:`~beenet.inference.pose.make_pose_backend` calls: the class's
    keyword arguments are the options the backend declares (``--pose-option KEY=VALUE``, typed by
    their hints); override it when the backend also takes the predictor's device or weights."""

    name: ClassVar[str] = "pose"
    needs_pixels: ClassVar[bool] = True
    install_hint: ClassVar[str] = ""

    @classmethod
    def build(cls, device: str, weights: str | None, **options: Any) -> PoseBackend:
        """The backend, with ``options`` (already typed); ``device`` and ``weights`` are the
        predictor's, for backends that use them."""
        return cls(**options)

    @property
    def settings(self) -> dict[str, Any]:
        """The public scalar attributes (bool, int, float, str) of the instance."""
        return {k: v for k, v in vars(self).items()
                if not k.startswith("_") and isinstance(v, (bool, int, float, str))}

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list[PoseDetection]:
        raise NotImplementedError(f"{type(self).__name__} does not find people")

    def reset(self) -> None:
        """Start a new video (nothing to start by default)."""

    def new_shot(self) -> None:
        """A shot cut: forget what was carried from frame to frame (nothing by default)."""

    def close(self) -> None:
        """Release models and threads (nothing by default)."""


def shot_cut(backend: PoseBackend) -> None:
    """Tell ``backend`` that the next frame starts a new shot."""
    backend.new_shot()
