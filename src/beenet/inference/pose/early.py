"""A pose backend built on a thread while the rest of ``beenet predict`` starts up.

Building the default backend (``mediapipe``: BlazePose's two models on LiteRT, the CNN person
detector on onnxruntime, their files found and checked) needs no torch, and importing torch is
most of ``beenet predict``'s start-up (about 2 s on a 2-core machine). :class:`PoseBuild` starts
the build on a thread before torch is imported, so the two overlap; a
:class:`~beenet.inference.predictor.Predictor` given it (``pose=PoseBuild(...)``) takes the
backend when it is first needed, and reports a build that failed exactly as one of its own
(docs/predict.md, "Start-up").
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from beenet.inference.pose.backends import make_pose_backend, resolve_backend_name

#: The backends built early: those that need no device (the predictor's device needs torch to
#: be resolved).
EARLY_BACKENDS = ("mediapipe",)


class PoseBuild:
    """The pose backend ``name`` with ``options``, being built and started (``reset``) on a
    thread from the moment this is made. :meth:`result` waits for it: the backend, or the
    exception the build raised. :meth:`close` closes a backend nobody took."""

    def __init__(self, name: str, options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.options = dict(options or {})
        self._future: Future = Future()
        self._taken = False
        threading.Thread(target=self._build, name="beenet-pose-build", daemon=True).start()

    @staticmethod
    def wanted(name: str) -> bool:
        """Whether the backend ``name`` (``auto`` resolved) is one built early."""
        return resolve_backend_name(name) in EARLY_BACKENDS

    def _build(self) -> None:
        try:
            backend = make_pose_backend(self.name, device="cpu", **self.options)
            backend.reset()  # loads the model files: a missing one fails here, as in Predictor.pose
        except BaseException as exc:  # handed to whoever takes the result
            self._future.set_exception(exc)
        else:
            self._future.set_result(backend)

    def result(self) -> Any:
        """The backend (once: it is the taker's to close), or the build's exception."""
        backend = self._future.result()
        self._taken = True
        return backend

    def close(self) -> None:
        """Close the backend if it was built and nobody took it (waits for the build)."""
        if self._taken:
            return
        self._taken = True
        try:
            backend = self._future.result()
        except BaseException:  # a failed build holds nothing
            return
        backend.close()
