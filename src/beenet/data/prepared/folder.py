"""The folder of one prepared cache while ``beenet prepare`` writes it: made, locked, cleaned.

One prepare at a time writes a cache folder: it holds ``fcntl.flock`` on ``<cache>/.prepare.lock``
(the OS releases it however the process ends, kill -9 included), and so may remove the temp files
(``.*.tmp``) of atomic writes a killed run left. A full disk is reported once, as
:class:`~.integrity.DiskFullError`, naming the folder and what to do.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from beenet.data.prepared.format import CONTEXT_FILE, MANIFEST, write_manifest
from beenet.data.prepared.integrity import DiskFullError, disk_full
from beenet.errors import ConfigError

log = logging.getLogger("beenet.data.prepared.build")

LOCK_FILE = ".prepare.lock"


@contextmanager
def cache_folder(base: Path, key: str, rebuild: bool) -> Iterator[Path]:
    """``base/key``, made if needed and locked (``fcntl.flock``: one prepare at a time, released
    however the process ends), cleared of what a killed run left (temp files) or, with
    ``rebuild``, of everything it held."""
    if base.exists() and not base.is_dir():
        raise ConfigError(f"--out {base}: that is a file, not a folder; give the folder that holds prepared "
                          "caches (it is made if needed)")
    out = base / key
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if disk_full(exc):
            raise DiskFullError(f"{out}: no space left on the device; free some and run again") from None
        raise ConfigError(f"cannot make the prepared cache folder {out} ({exc.strerror or exc}); "
                          "give another --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out}: another 'beenet prepare' is writing this cache; wait for it to end "
                              "(or stop it)") from None
        if rebuild:
            shutil.rmtree(out / "clips", ignore_errors=True)
            for name in (MANIFEST, CONTEXT_FILE):
                (out / name).unlink(missing_ok=True)
            log.info("prepare --rebuild: emptied %s", out)
        stale = [p for p in [*out.glob(".*.tmp"), *(out / "clips").rglob(".*.tmp")] if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        if stale:
            log.info("prepare: removed %d temp file(s) a killed run left in %s", len(stale), out)
        yield out
    finally:
        os.close(fd)


def disk_full_error(out: Path, video: str | None, done: int, reason: str) -> DiskFullError:
    where = f" writing the clip of {video}" if video else ""
    return DiskFullError(f"no space left on the device of {out}{where} ({reason}): prepare stopped; the {done} "
                         "clip(s) finished are kept. Free some space (or give another --out) and run the same "
                         "command again to continue")


def save_manifest_after_full_disk(out: Path, fp: dict[str, Any], entries: dict[str, dict[str, Any]],
                                   failed: list[tuple[str, str]]) -> None:
    """Record the clips done so far, when the full disk still lets the manifest be written."""
    try:
        write_manifest(out, fp, entries, failed, complete=False)
    except OSError as exc:
        log.warning("prepare: could not update %s either (%s); the next run checks each clip file instead",
                    out / MANIFEST, exc.strerror or exc)
