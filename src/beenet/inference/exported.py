"""A checkpoint's ONNX export, made once and kept in the cache, so that predicting with a ``.pt``
on the ``onnx`` engine (the CPU default, ``engine="auto"``) loads neither torch nor the checkpoint
after the first time.

The file is ``exports/<checkpoint key>-<model code digest>.onnx`` (:func:`export_key`) under the cache root
(:func:`beenet.paths.cache_dir`): a changed checkpoint, or a beenet whose model or export code
changed, gets a new file. The digest covers the bytes of ``beenet/models/*.py`` and of the exporter
(:mod:`beenet.inference.onnx`), so it needs no version bump to notice a change.
A cached export that cannot be loaded (a damaged file) is made again once
(:func:`beenet.inference.scoring.load_engine`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from beenet.artifacts.pretrained import CONFIG_FILE, checkpoint_sha256, resolve_checkpoint
from beenet.paths import cache_dir
from beenet.version import __version__

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parents[1]


def model_code_digest() -> str:
    """SHA-256 (first 12 hex digits) over beenet's version and the source of the model and of
    the exporter: what decides the graph an export holds, besides the checkpoint."""
    h = hashlib.sha256(__version__.encode())
    for path in sorted((_PACKAGE / "models").glob("*.py")) + [_PACKAGE / "inference" / "onnx.py"]:
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def export_key(checkpoint: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of everything an export reads from ``checkpoint``: the file of a ``.pt``; for a
    pretrained folder, its weights and its ``config.json`` (the model config and the ``trained_on``
    record the export carries), so two folders with the same weights but different records do not
    share an export."""
    path = resolve_checkpoint(checkpoint)
    if not path.is_dir():
        return checkpoint_sha256(path)
    h = hashlib.sha256(checkpoint_sha256(path).encode())
    h.update(b"\0" + (path / CONFIG_FILE).read_bytes())
    return h.hexdigest()


def export_path(checkpoint: str | os.PathLike[str]) -> Path:
    """Where the cached export of ``checkpoint`` is (or will be)."""
    return cache_dir("exports") / f"{export_key(checkpoint)[:24]}-{model_code_digest()}.onnx"


def cached_export(checkpoint: str | os.PathLike[str], fresh: bool = False) -> tuple[Path, str | None]:
    """The ONNX export of ``checkpoint``: the cached file, exported first when missing (or when
    ``fresh``, over a damaged one). Returns ``(path, tmpdir)``: ``tmpdir`` is a temporary folder
    holding the export when the cache cannot be written (its owner removes it), else None."""
    path = export_path(checkpoint)
    if path.is_file() and not fresh:
        return path, None
    from beenet.inference.onnx import export_onnx  # lazy: loads torch and the checkpoint, only to export

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(path.parent, os.W_OK)
    except OSError:
        writable = False
    if writable:
        log.info("exporting %s to ONNX once, kept as %s", checkpoint, path)
        return export_onnx(checkpoint, path), None
    # A read-only cache: a temporary export, as before the cache existed.
    log.warning("cannot write the ONNX export to %s; exporting to a temporary folder", path.parent)
    tmpdir = tempfile.mkdtemp(prefix="beenet-onnx-")
    try:
        return export_onnx(checkpoint, Path(tmpdir) / "model.onnx"), tmpdir
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
