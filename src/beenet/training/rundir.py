"""The run directory: what it holds, the refusal to overwrite one, ``metrics.csv`` and ``train.log``.

Run directory (``out_dir`` of :func:`beenet.training.loop.train`)::

    config.yaml   the resolved RunConfig (what ran; ``beenet train --resume`` reads it back)
    metrics.csv   one row per epoch: lr, train loss parts, val mAP/mRA/mR2/ERS, seconds
    best.pt       the checkpoint with the best val ERS so far
    last.pt       the checkpoint of the last finished epoch (optimizer, scheduler, RNG: resumable)
    train.log     the log of the run
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from beenet import atomic
from beenet.errors import CheckpointError, ConfigError

#: The files a run directory holds (see the module doc).
RUN_FILES = ("config.yaml", "metrics.csv", "last.pt", "best.pt", "train.log")


def check_run_dir(out: Path, resume: bool) -> None:
    """A new run needs an empty or missing ``out``; a resumed one needs ``out/last.pt``."""
    if resume:
        if not (out / "last.pt").is_file():
            raise CheckpointError(
                f"{out / 'last.pt'}: nothing to resume (no last.pt in {out}); start the run without "
                "--resume, or point --out at the run directory you want to continue"
            )
        return
    if out.exists() and any(out.iterdir()):
        present = [f for f in RUN_FILES if (out / f).exists()]
        what = f"a run ({', '.join(present)})" if present else "other files"
        raise ConfigError(
            f"{out} already holds {what}; beenet never overwrites a run: pass --resume to continue "
            "it, or choose a new --out directory"
        )


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
    """``metrics.csv``: one row per epoch, the header fixed by the first row written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
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


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v
