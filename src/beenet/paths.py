"""Where beenet keeps what it computes or fetches: one cache root, named by one environment variable.

``$BEENET_CACHE`` when set, else ``$XDG_CACHE_HOME/beenet``, else ``~/.cache/beenet``. Below it,
one folder per kind of thing (:data:`CACHE_KINDS`): expert context labels, prepared clips, paper
splits, model files. Every part of beenet asks :func:`cache_dir` and never builds the path
itself, so moving the cache is one variable.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "BEENET_CACHE"

#: The folders under the cache root, by kind.
CACHE_KINDS: dict[str, str] = {
    "context": "context",          # context labels of the experts, one .npz per expert fingerprint
    "prepared": "prepared",        # beenet prepare: decoded clips, one folder per config fingerprint
    "splits": "splits",            # the paper protocol's split files when the data folder is read-only
    "models": "models",            # model files beenet runs but does not ship (beenet.model_files)
    "tracks": "tracks",            # beenet import: pass 1 (pose + tracking) of each video, one .npz
    "exports": "exports",          # predict's ONNX exports of checkpoints, one .onnx per checkpoint and model code
}


def cache_root() -> Path:
    """``$BEENET_CACHE``, else ``$XDG_CACHE_HOME/beenet``, else ``~/.cache/beenet``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "beenet"


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cached thing (a key of :data:`CACHE_KINDS`) under :func:`cache_root`."""
    try:
        return cache_root() / CACHE_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown cache kind {kind!r}; one of {', '.join(CACHE_KINDS)}") from None
