"""Pruned tflite models kept on disk, so that a process start does not prune them again.

Pruning BlazePose's landmark model to the outputs read (:func:`~beenet.inference.pose.blazepose.pruned_model`)
goes through the flatbuffers object API in Python: importing the schema and unpacking, pruning
and packing the model took 0.3-0.5 s of every ``beenet predict``'s start-up on a 2-core machine
(docs/predict.md, "Start-up"). The result depends only on the model's bytes, the outputs kept and
the pruning code, so it is kept under ``<cache root>/models/pruned/`` by a key over all three, in
a file whose name also carries the SHA-256 of what it holds (checked on every read: a damaged
file is pruned again and replaced). A cache that cannot be written costs only the pruning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

from beenet.atomic import atomic_open
from beenet.paths import cache_dir

Prune = Callable[[bytes, tuple[str, ...]], bytes]


def pruned_dir() -> Path:
    """``<cache root>/models/pruned``."""
    return cache_dir("models") / "pruned"


def cache_key(data: bytes, outputs: tuple[str, ...], prune: Prune) -> str:
    """The key of ``prune(data, outputs)``: SHA-256 over the model's bytes, the outputs kept and
    the pruning function's code (a changed pruning makes a new key)."""
    h = hashlib.sha256(data)
    h.update("\0".join(("", *outputs, "")).encode())
    _hash_code(prune.__code__, h)
    return h.hexdigest()[:32]


def _hash_code(code: CodeType, h: Any) -> None:
    """The bytecode, names and constants of ``code`` and of the code inside it (comprehensions),
    not where it lies (file, line numbers, memory addresses)."""
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _hash_code(const, h)
        else:
            h.update(repr(const).encode())


def kept_pruned(data: bytes, outputs: tuple[str, ...], prune: Prune, folder: Path | None = None,
                suffix: str = ".tflite", key: str | None = None) -> bytes:
    """``prune(data, outputs)``, read from ``folder`` (default :func:`pruned_dir`) when it was
    kept there before and its bytes check, else computed and kept (as ``<key>-<sha>{suffix}``;
    ``key`` defaults to :func:`cache_key`)."""
    folder = pruned_dir() if folder is None else folder
    key = cache_key(data, outputs, prune) if key is None else key
    for path in sorted(folder.glob(f"{key}-*{suffix}")):
        try:
            body = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(body).hexdigest()[:32] == path.stem.partition("-")[2]:
            return body
        path.unlink(missing_ok=True)  # damaged: pruned again below
    body = prune(data, outputs)
    try:
        with atomic_open(folder / f"{key}-{hashlib.sha256(body).hexdigest()[:32]}{suffix}", "wb") as fh:
            fh.write(body)
    except OSError:  # a read-only cache: prune again next time
        pass
    return body
