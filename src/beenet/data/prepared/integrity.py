"""Knowing a prepared cache is whole, and that it was made from the files a run reads.

- **Clip files** end in a 16-byte trailer: the length of everything before it (uint64) and its
  CRC-32 (uint32), then ``b"BEND"``. :func:`verify_clip_file` checks both (``beenet prepare``
  does, for every clip it reuses); readers check the size cheaply (:func:`expected_size`).
- **Sources** are stamped by content, not by path or mtime, so a cache survives a copy of the
  dataset (``cp``, another mount): :func:`content_stamp` is a file's size and a BLAKE2b digest of
  its first and last 64 KiB. :func:`seen_stamp` (size, mtime) is only a shortcut: a file whose
  size and mtime are the ones recorded is not read again.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from beenet.errors import BeenetError, VideoDecodeError

#: How much of each end of a source file :func:`content_stamp` reads.
HASH_BYTES = 1 << 16
TRAILER = struct.Struct("<QI4s")
TRAILER_MAGIC = b"BEND"
#: The errors that mean the disk (or quota) is full: prepare stops at the first.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DamagedClipError(VideoDecodeError):
    """A prepared clip file that is cut short, overwritten or otherwise unreadable."""


class DiskFullError(BeenetError, OSError):
    """``beenet prepare`` met a full disk (or quota) and stopped."""


def disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is "No space left on device" or a full quota."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


# --------------------------------------------------------------------------- sources


def seen_stamp(path: Path) -> list[int]:
    """(size, mtime in ns) of a file, or (-1, -1) when it does not exist."""
    try:
        st = path.stat()
    except OSError:
        return [-1, -1]
    return [int(st.st_size), int(st.st_mtime_ns)]


def content_stamp(path: Path) -> list[Any]:
    """[size, digest of the first and last 64 KiB] of a file, or [-1, ""] when it does not exist."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            h = hashlib.blake2b(digest_size=8)
            h.update(fh.read(HASH_BYTES))
            if size > HASH_BYTES:
                fh.seek(max(HASH_BYTES, size - HASH_BYTES))
                h.update(fh.read(HASH_BYTES))
    except OSError:
        return [-1, ""]
    return [int(size), h.hexdigest()]


# --------------------------------------------------------------------------- clip files


def trailer(body: int, crc: int) -> bytes:
    return TRAILER.pack(body, crc & 0xFFFFFFFF, TRAILER_MAGIC)


def crc_of(fh: BinaryIO, length: int, chunk: int = 1 << 20) -> int:
    """CRC-32 of the next ``length`` bytes of ``fh`` (fewer when the file ends first)."""
    crc = 0
    while length > 0:
        block = fh.read(min(chunk, length))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        length -= len(block)
    return crc


def verify_clip_file(path: Path, size: int | None = None) -> str | None:
    """Why the clip file at ``path`` is damaged (None: whole): its size (and ``size``, when the
    manifest records one), its trailer and the CRC-32 of everything before it."""
    try:
        with open(path, "rb") as fh:
            actual = os.fstat(fh.fileno()).st_size
            if size is not None and actual != size:
                return f"{actual} bytes, the manifest records {size}"
            if actual < TRAILER.size:
                return f"only {actual} bytes"
            fh.seek(actual - TRAILER.size)
            body, crc, magic = TRAILER.unpack(fh.read(TRAILER.size))
            if magic != TRAILER_MAGIC or body != actual - TRAILER.size:
                return f"no valid end record ({actual} bytes: cut short, or overwritten)"
            fh.seek(0)
            if crc_of(fh, body) != crc:
                return "checksum mismatch (its bytes changed since it was written)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None
