"""Atomic file writes: a temp file in the target's directory, renamed over the target when done.

A crash or a kill mid-write leaves the previous file (or none), never a truncated one. Every
report, split, config, table and metrics file beenet writes goes through here.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


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
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
