"""The run directory: what it holds, the refusal to overwrite one, ``metrics.csv`` and ``train.log``.

Run directory (``out_dir`` of :func:`beenet.training.loop.train`)::

    config.yaml   the resolved RunConfig (what ran; ``beenet train --resume`` reads it back)
    metrics.csv   one row per epoch: lr, train loss parts, val mAP/mRA/mR2/ERS, seconds
    best.pt       the checkpoint with the best val ERS so far
    last.pt       the checkpoint of the last finished epoch (optimizer, scheduler, RNG: resumable)
    train.log     the log of the run
    .beenet.lock  the run's lock: held (``fcntl.flock``) by the one process writing the run
    tensorboard/  TensorBoard event files of metrics.csv (when the tensorboard package is installed)
    report.html   written by ``beenet view RUN`` (not by the run)

Rules (``docs/training.md``, "Run directories"):

- one writer: :class:`RunLock` is taken before anything is written and held for the whole run
  (resume included); a second ``beenet train`` on the same ``--out`` is refused at once with the
  holder's pid, host and start time. The OS drops the lock when its process dies, so a
  ``kill -9`` leaves no stale lock. Under the lock, temp files an interrupted atomic write left
  (``.*.tmp``) are removed.
- restart: a run directory that holds only beenet's own files and no ``last.pt`` (a run stopped
  before its first epoch ended) is restarted from scratch by the plain command; ``--resume``
  on it explains that there is nothing to resume and that the plain command restarts it.
  A directory holding any other file is never written into.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import fcntl
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from beenet import atomic
from beenet.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

#: The files a run directory holds (see the module doc).
RUN_FILES = ("config.yaml", "metrics.csv", "last.pt", "best.pt", "train.log")
#: The lock file of a run directory (see :class:`RunLock`).
LOCK_FILE = ".beenet.lock"
#: The files a restart from scratch replaces (a run without ``last.pt`` has no trained state).
RESTART_REPLACES = ("metrics.csv", "best.pt")
#: What other beenet commands put in a run directory: TensorBoard event files (written by the run
#: when the package is installed) and the page of ``beenet view RUN``.
RUN_EXTRAS = ("tensorboard", "report.html")


class RunLockedError(ConfigError):
    """Another process holds the run directory's lock."""


def _own_file(name: str) -> bool:
    """beenet's own files in a run directory: the run files, the lock, atomic-write temp files."""
    return (name in RUN_FILES or name in RUN_EXTRAS or name == LOCK_FILE
            or (name.startswith(".") and name.endswith(".tmp")))


def check_run_dir(out: Path, resume: bool) -> bool:
    """Whether ``out`` may be written by this run; True when it restarts a run that has no
    checkpoint yet (see the module doc), False for a new (missing or empty ``out``) or resumed run.

    Raises :class:`CheckpointError` (``--resume`` with no ``last.pt``) or :class:`ConfigError`
    (a run with a checkpoint and no ``--resume``; a directory holding other files).
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a run directory: choose a new --out directory")
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    foreign = [n for n in names if not _own_file(n)]
    has_last = "last.pt" in names
    if resume:
        if has_last:
            return False
        if names and not foreign:
            raise CheckpointError(
                f"{out}: nothing to resume: the run has no checkpoint yet (no last.pt: it stopped before "
                f"its first epoch ended); run the same command without --resume to restart it from scratch"
            )
        raise CheckpointError(
            f"{out / 'last.pt'}: nothing to resume (no last.pt in {out}); start the run without "
            "--resume, or point --out at the run directory you want to continue"
        )
    if not names:
        return False
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(
            f"{out} already holds files that are not a beenet run ({shown}); beenet never overwrites "
            "or writes into such a directory: choose a new --out directory"
        )
    if has_last:
        present = [f for f in RUN_FILES if f in names]
        raise ConfigError(
            f"{out} already holds a run ({', '.join(present)}); beenet never overwrites a run: pass "
            "--resume to continue it, or choose a new --out directory"
        )
    return bool([n for n in names if n in RUN_FILES])


def prepare_restart(out: Path) -> None:
    """Clear what a run stopped before its first checkpoint left and a new start replaces
    (``metrics.csv`` rows, a ``best.pt`` without its ``last.pt``); ``train.log`` is kept and appended to."""
    for name in (*RESTART_REPLACES, "tensorboard"):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        log.info("%s: removed %s left by the earlier attempt (it had no last.pt)", out, name)


def clear_stale_temp_files(out: Path) -> list[str]:
    """Remove the temp files (``.*.tmp``) an interrupted atomic write left in ``out`` (call under
    the run's lock: no other writer can own them). Returns their names."""
    removed = []
    for p in sorted(out.glob(".*.tmp")):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p.name)
    if removed:
        log.info("%s: removed %d temp file(s) an interrupted write left: %s", out, len(removed), ", ".join(removed))
    return removed


class RunLock:
    """The one-writer lock of a run directory: ``fcntl.flock`` on ``out/.beenet.lock``.

    ``acquire()`` never waits: when another process holds the lock it raises
    :class:`RunLockedError` naming the holder (pid, host, start time, as the holder wrote them).
    The OS releases the lock when the holding process ends in any way (kill -9 included), so a
    lock file left on disk is never stale. A context manager.
    """

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a folder of that name, no permission, a read-only disk
            what = "is a folder, not beenet's lock file: move or remove it" if self.path.is_dir() else "cannot be opened"
            raise ConfigError(f"{self.path}: {what} ({exc.strerror or exc}); the run directory cannot be "
                              "locked, so nothing was written") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent}: another beenet process is writing this run ({holder}); only one "
                f"process may write a run directory: wait for it to end (or stop it), or choose another --out"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"{self.path}: cannot lock the run directory ({exc.strerror or exc})") from None
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}, started {started}\n".encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        return text or "holder not yet recorded"

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # no holder recorded once released
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def log_to_file(path: Path | None) -> Iterator[None]:
    """Copy the ``beenet`` loggers' records (INFO and up) into ``path`` for the block (none: no-op)."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("beenet")
    old_level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


class MetricsLog:
    """``metrics.csv``: one row per epoch, the header fixed by the first row written.

    With ``tensorboard=True`` and the ``tensorboard`` package installed (``pip install
    'beenet[tensorboard]'``), each row's numbers also go to TensorBoard event files in
    ``<run>/tensorboard/`` (``train/<part>``, ``val/<metric>``, ``lr``, step = epoch), so
    ``tensorboard --logdir runs`` shows every run. Without the package nothing else changes.
    """

    def __init__(self, path: Path, tensorboard: bool = False) -> None:
        self.path = path
        self.fields: list[str] | None = None
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # lazy: tensorboard is optional
            except ImportError:
                pass
            else:
                self._tb = SummaryWriter(str(path.parent / "tensorboard"))
        if path.exists():
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
            self.fields = header or None

    def truncate_after(self, epoch: int) -> None:
        """Drop rows past ``epoch`` (1-based, as in the file): rows an interruption left without
        their checkpoint."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        keep = [r for r in rows if int(r["epoch"]) <= epoch]
        if len(keep) != len(rows):
            self._write_all(keep)

    def _write_all(self, rows: list[dict[str, Any]]) -> None:
        assert self.fields is not None
        with atomic.atomic_open(self.path, newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.fields)
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self.fields).writeheader()
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore").writerow(
                {k: _fmt(row.get(k)) for k in self.fields}
            )
        if self._tb is not None:
            step = int(row["epoch"])
            for k, v in row.items():
                if k == "epoch" or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                tag = k.replace("train_", "train/", 1).replace("val_", "val/", 1) if "_" in k else k
                self._tb.add_scalar(tag, float(v), step)
            self._tb.flush()

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v
