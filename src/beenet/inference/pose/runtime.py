"""The runtimes of the BlazePose backends: mediapipe (its Tasks API, or ``mp.solutions``) and
LiteRT (``ai-edge-litert``): the command that installs them, importing them, and silencing the
C++ logging they write to stderr."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from beenet.errors import BeenetError

#: The command that installs a mediapipe the BlazePose backends work with (README command 1 runs it).
INSTALL_HINT = "bash scripts/install-pose.sh (in the beenet repository, with your environment active)" + (
    "; on this Python that is: pip install --no-deps mediapipe==0.10.21 && pip install absl-py attrs "
    "flatbuffers 'protobuf>=4.25.3,<5' 'opencv-python-headless<5' 'ai-edge-litert>=2.0'" if sys.version_info < (3, 13) else ""
)

_QUIET_LOCK = threading.RLock()


def litert_available() -> bool:
    """Whether ``ai-edge-litert`` (the ``litert`` engine's runtime) can be imported."""
    try:
        return importlib.util.find_spec("ai_edge_litert") is not None
    except (ImportError, ValueError):
        return False


def require_litert() -> None:
    """BeenetError with the install command when ``ai-edge-litert`` does not import."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401  # lazy: optional LiteRT runtime
    except ImportError as exc:
        raise BeenetError(f"pose engine 'litert' needs ai-edge-litert; install it with: {INSTALL_HINT}") from exc


def import_mediapipe(needs: str):
    """``import mediapipe`` for a pose backend, its C++ logging down to warnings and errors (set
    before the import: mediapipe logs every graph start); BeenetError with the install command
    when it is missing. ``needs`` says what the backend needs, for the message."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp  # lazy: optional and slow to import; only the mediapipe backends need it
    except ImportError as exc:
        raise BeenetError(f"{needs}; install it with: {INSTALL_HINT}") from exc
    return mp


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (mediapipe's C++ logging and TFLite's 'INFO: Created TensorFlow Lite
    XNNPACK delegate' go there, not through Python) for the duration; Python errors still raise.
    One thread at a time (a lock): two overlapping redirections of the same descriptor, undone in
    the wrong order, would leave stderr pointing at /dev/null for good."""
    fd = 2  # what C++ writes to, whatever sys.stderr is (pytest, notebooks replace it)
    with _QUIET_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(fd)
        except (AttributeError, OSError, ValueError):
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            os.close(devnull)
