"""Atomic file writes: a temp file in the target's directory, renamed over the target when done.

A crash or a kill mid-write leaves the previous file (or none), never a truncated one. Every
report, split, config, table, checkpoint and metrics file beenet writes goes through here.

``tempfile.mkstemp`` makes its files mode 0600; the file that appears under the target's name
gets the mode the user expects instead: the mode of the file it replaces, or for a new file
``0666`` less the process umask (as ``open()`` would give it). A Ctrl-C that a library turns into
its own error mid-write (``torch.save`` does) is raised as the ``KeyboardInterrupt`` it was.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from beenet.errors import caused_by_interrupt

_umask: int | None = None
_umask_lock = threading.Lock()


def process_umask() -> int:
    """The process umask, read once: from ``/proc/self/status`` where it exists (no race), else by
    setting and restoring it under a lock (the only portable way)."""
    global _umask
    if _umask is None:
        with _umask_lock:
            if _umask is None:
                value = None
                try:
                    m = re.search(r"^Umask:\s*([0-7]+)", Path("/proc/self/status").read_text(), re.M)
                    value = int(m.group(1), 8) if m else None
                except OSError:
                    pass
                if value is None:
                    value = os.umask(0o022)
                    os.umask(value)
                _umask = value
    return _umask


def _final_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~process_umask()


def _reraise(exc: BaseException) -> None:
    if not isinstance(exc, KeyboardInterrupt) and caused_by_interrupt(exc):
        raise KeyboardInterrupt() from exc


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temp path beside ``path`` (same suffix) for writers that want a file name; it replaces
    ``path`` when the block succeeds and is removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _final_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _reraise(exc)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None, fsync: bool = False) -> Iterator[IO[Any]]:
    """``open(path, mode)`` whose content appears under ``path`` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else newline) as fh:
            os.fchmod(fh.fileno(), _final_mode(path))
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _reraise(exc)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2,
               default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``obj`` as JSON atomically; NaN and inf are refused (``ValueError``), as JSON has none."""
    text = json.dumps(obj, indent=indent, allow_nan=False, default=default)
    return write_text(path, text + "\n")


def to_builtins(v: Any, *, finite_only: bool = False) -> Any:
    """``v`` as builtins only (dicts with str keys, lists, str, int, float, bool, None): numpy and
    torch scalars become Python numbers, anything else its ``str``. What ``torch.load(weights_only=
    True)`` and JSON accept. ``finite_only`` turns NaN and inf into None (JSON has neither)."""
    if isinstance(v, dict):
        return {str(k): to_builtins(x, finite_only=finite_only) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_builtins(x, finite_only=finite_only) for x in v]
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return None if finite_only and not math.isfinite(v) else v
    if hasattr(v, "item"):
        return to_builtins(v.item(), finite_only=finite_only)
    return str(v)
