"""The runtime of the BlazePose backend: LiteRT (``ai-edge-litert``), the command that installs
it, importing it, and silencing the C++ logging it writes to stderr."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from beenet.errors import BeenetError

#: The command that installs what the ``mediapipe`` pose backend runs on (beenet declares it as a
#: dependency where LiteRT publishes wheels: Linux, and macOS on arm64). The model files are
#: fetched on first use (``beenet models fetch`` fetches them ahead of time).
INSTALL_HINT = "pip install ai-edge-litert  (or: pip install 'beenet[pose]')"

_QUIET_LOCK = threading.RLock()


def litert_available() -> bool:
    """Whether ``ai-edge-litert`` (what the ``mediapipe`` backend runs the models on) can be imported."""
    try:
        return importlib.util.find_spec("ai_edge_litert") is not None
    except (ImportError, ValueError):
        return False


def require_litert() -> None:
    """BeenetError with the install command when ``ai-edge-litert`` does not import."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401  # lazy: optional LiteRT runtime
    except ImportError as exc:
        raise BeenetError(f"the 'mediapipe' pose backend runs BlazePose on ai-edge-litert, which does not import "
                          f"here ({exc}); install it with: {INSTALL_HINT}") from exc


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (TFLite's 'INFO: Created TensorFlow Lite XNNPACK delegate' goes
    there, not through Python) for the duration; Python errors still raise. One thread at a time
    (a lock): two overlapping redirections of the same descriptor, undone in the wrong order,
    would leave stderr pointing at /dev/null for good."""
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
