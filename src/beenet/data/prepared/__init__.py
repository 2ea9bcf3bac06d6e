"""The prepared cache: every clip decoded once, stored as what training and evaluation read.

``beenet prepare`` (:func:`prepare`, in :mod:`.build`) makes it; ``beenet train`` and
``beenet eval`` find it with :func:`find_prepared` (:mod:`.lookup`: the fingerprint, the cache
root, which clips it serves) and read it through :class:`PreparedFrames`, a :class:`~beenet.data.dataset.FrameSource`
(:mod:`.format`: the clip files, the manifest, ``context.npz``; :mod:`.integrity`: checksums and
content stamps; :mod:`.folder`: the locked cache folder prepare writes). What a cache depends on comes in
a :class:`PrepareSettings`, which ``prepare_settings`` of the run config module makes from a run
config.
"""

from beenet.data.prepared.build import PrepareResult, prepare
from beenet.data.prepared.format import (
    DEFAULT_STORAGE,
    JPEG_QUALITY,
    MAGIC,
    PREPARED_FORMAT,
    STORAGES,
    PreparedFrames,
    Storage,
    cache_key,
    clip_path,
    clip_seen,
    clip_stamp,
    decode_frame,
    encode_frame,
    nearest_rows,
    read_header,
    write_clip,
)
from beenet.data.prepared.integrity import DamagedClipError, DiskFullError, verify_clip_file
from beenet.data.prepared.lookup import (
    PreparedCache,
    PrepareSettings,
    context_targets,
    default_prepared_root,
    find_prepared,
    fingerprint,
    prepared_root,
)

__all__ = [
    "DEFAULT_STORAGE", "JPEG_QUALITY", "MAGIC", "PREPARED_FORMAT", "STORAGES", "PrepareResult", "PrepareSettings",
    "DamagedClipError", "DiskFullError", "PreparedCache", "PreparedFrames", "Storage", "cache_key", "clip_path",
    "clip_seen", "clip_stamp", "verify_clip_file",
    "context_targets", "decode_frame", "default_prepared_root", "encode_frame", "find_prepared", "fingerprint",
    "nearest_rows", "prepare", "prepared_root", "read_header", "write_clip",
]
