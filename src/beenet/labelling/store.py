"""The labels file ``beenet label`` writes: read, checked, changed one row at a time, atomically.

:class:`LabelStore` keeps no copy of the file: every request reads it again (so a line written by
hand while the page is open is kept), changes one row, and writes the whole file through
:mod:`beenet.atomic` (a crash leaves the old file, never a cut one). A row is the full form of
``beenet import``'s labels file (:mod:`beenet.importing.labels_file`), checked by the same
:func:`~beenet.importing.labels_file.parse_row`, and against the people pass 1 found in its video
(the checks ``beenet import`` makes), so every row the page saves is one import reads. Rows of the
plain form, rows of other videos, and the header stay as they are.

A row is named by its key ``(video, person_id, start_frame, end_frame, annotator)``: one annotator
labels a span of a person once, several annotators the same span each in their own row.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beenet.atomic import write_text
from beenet.errors import BeenetError, BoLDFormatError
from beenet.importing.labels_file import FULL_COLUMNS, FULL_HEADER, LabelRow, RowError, parse_row
from beenet.labels import CATEGORIES, NUM_CATEGORIES, VAD_NAMES

Key = tuple[str, int, int, int, str]


class RowRefused(BeenetError, ValueError):
    """A row the page sent that cannot be saved (the server answers 400 with the message)."""


@dataclass(frozen=True)
class VideoPeople:
    """What a label row of one video is checked against: the name rows use, its frame count, and
    the frames each person pass 1 found is tracked in."""

    name: str
    num_frames: int
    frames: dict[int, np.ndarray] = field(default_factory=dict)


def key_of(row: LabelRow) -> Key:
    return (row.video, int(row.person_id), int(row.start), int(row.end), row.annotator)  # type: ignore[arg-type]


def row_json(row: LabelRow) -> dict[str, Any]:
    """A full-form row as the page reads it."""
    return {"video": row.video, "person_id": row.person_id, "start": row.start, "end": row.end,
            "annotator": row.annotator, "categories": list(row.categories), "vad": list(row.vad)}


def _cells(row: LabelRow) -> list[str]:
    return [row.video, str(row.person_id), str(row.start), str(row.end), row.annotator,
            *(f"{c:g}" for c in row.categories), *(f"{v:g}" for v in row.vad)]


def _field(obj: dict[str, Any], name: str) -> Any:
    if name not in obj:
        raise RowRefused(f"the row has no {name!r}")
    return obj[name]


def _text(value: Any, what: str) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise RowRefused(f"{what} must be a number or text, not {value!r}")
    return str(value)


class LabelStore:
    """The labels file at ``path``, its rows checked against ``videos`` (by the name rows use)."""

    def __init__(self, path: str | Path, videos: dict[str, VideoPeople]) -> None:
        self.path = Path(path)
        self.videos = videos
        self.lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------------
    def _read(self) -> list[tuple[list[str], LabelRow | None]]:
        """Every line's cells, with its parsed row for a full-form row (None for a header or a
        plain row). Raises :class:`BoLDFormatError` naming the file and line of a row that
        ``beenet import`` would not read."""
        if not self.path.exists():
            return []
        if not self.path.is_file():
            raise BoLDFormatError(self.path, None, "is not a file")
        lines: list[tuple[list[str], LabelRow | None]] = []
        with open(self.path, newline="", encoding="utf-8-sig") as fh:
            for line, cells in enumerate(csv.reader(fh), start=1):
                if not cells or all(not c.strip() for c in cells):
                    continue
                if cells[0].strip().lower() == "video":
                    lines.append((cells, None))
                    continue
                try:
                    row = parse_row(cells, line)
                except RowError as exc:
                    raise BoLDFormatError(self.path, line, f"{exc}; fix or remove the line (beenet label "
                                                           "keeps every line of an existing labels file)") from None
                lines.append((cells, row if not row.plain else None))
        return lines

    def check(self) -> int:
        """Reads the file (refusing a malformed one); the number of rows it holds."""
        with self.lock:
            return sum(1 for cells, _ in self._read() if cells[0].strip().lower() != "video")

    def rows(self) -> list[dict[str, Any]]:
        """The full-form rows of the page's videos, in file order."""
        with self.lock:
            return [row_json(r) for _, r in self._read() if r is not None and r.video in self.videos]

    # ---- changing --------------------------------------------------------------------------------
    def parse(self, obj: Any) -> LabelRow:
        """A row the page sent (``{video, person_id, start, end, annotator, categories[26], vad[3]}``),
        checked as ``beenet import`` checks it; :class:`RowRefused` says why not."""
        if not isinstance(obj, dict):
            raise RowRefused(f"a row must be a JSON object, not {type(obj).__name__}")
        cats, vad = _field(obj, "categories"), _field(obj, "vad")
        if not isinstance(cats, list) or len(cats) != NUM_CATEGORIES:
            raise RowRefused(f"'categories' must be a list of {NUM_CATEGORIES} numbers (0 or 1), BoLD's order")
        if not isinstance(vad, list) or len(vad) != len(VAD_NAMES):
            raise RowRefused("'vad' must be a list of 3 numbers: valence, arousal, dominance (1 to 10)")
        annotator = _text(_field(obj, "annotator"), "annotator").strip()
        if not annotator:
            raise RowRefused("the annotator is empty: type a name in the Annotator field")
        if any(ch in annotator for ch in "\r\n\t"):
            raise RowRefused(f"the annotator {annotator!r} must be one line")
        video = _text(_field(obj, "video"), "video")
        cells = [video, _text(_field(obj, "person_id"), "person_id"), _text(_field(obj, "start"), "start_frame"),
                 _text(_field(obj, "end"), "end_frame"), annotator,
                 *(_text(c, f"category {n}") for n, c in zip(CATEGORIES, cats)),
                 *(_text(v, n) for n, v in zip(VAD_NAMES, vad))]
        try:
            row = parse_row(cells, 0)
        except RowError as exc:
            raise RowRefused(str(exc)) from None
        for name, c in zip(CATEGORIES, row.categories):
            if c not in (0.0, 1.0):
                raise RowRefused(f"category {name} must be 0 or 1 (ticked or not): {c:g}")
        self._check_people(row)
        return row

    def _check_people(self, row: LabelRow) -> None:
        vid = self.videos.get(row.video)
        if vid is None:
            raise RowRefused(f"video {row.video!r} is not on this page (videos: {', '.join(sorted(self.videos))})")
        start, end, pid = int(row.start), int(row.end), int(row.person_id)  # type: ignore[arg-type]
        if end >= vid.num_frames:
            raise RowRefused(f"the span {start}-{end} is outside {vid.name}, which has {vid.num_frames} frames "
                             f"(0-{vid.num_frames - 1})")
        if pid not in vid.frames:
            found = ", ".join(map(str, sorted(vid.frames))) or "nobody"
            raise RowRefused(f"person {pid} is not among the people the tracker found in {vid.name} "
                             f"(person ids: {found})")
        frames = vid.frames[pid]
        if not ((frames >= start) & (frames <= end)).any():
            raise RowRefused(f"person {pid} is not tracked anywhere in frames {start}-{end} of {vid.name} "
                             f"(tracked in {frames[0]}-{frames[-1]})")

    def _write(self, lines: list[list[str]]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(lines)
        write_text(self.path, buf.getvalue())

    def save(self, obj: Any, replaces: Any = None) -> LabelRow:
        """Save a row: it takes the place of the row with key ``replaces`` (the row the page was
        editing, whose span or person may have changed), or is appended. A row whose key is
        another row's is refused (one row per annotator and span; a new span typed over a saved
        one does not wipe its labels)."""
        row = self.parse(obj)
        old = self._key(replaces) if replaces is not None else None
        new = key_of(row)
        with self.lock:
            lines = self._read()
            keys = [key_of(r) if r is not None else None for _, r in lines]
            at = keys.index(old) if old is not None and old in keys else None
            if new in keys and keys.index(new) != at:  # a new row, or a change, onto another row's key
                raise RowRefused(f"{new[4]} already has a row for person {new[1]}, frames {new[2]}-{new[3]} of "
                                 f"{new[0]}: open that one (s, or click it under Saved spans) to change it")
            out = [cells for cells, _ in lines]
            if at is not None:
                out[at] = _cells(row)
            else:
                if not lines:
                    out.append(list(FULL_HEADER))
                out.append(_cells(row))
            self._write(out)
        return row

    def delete(self, key: Any) -> bool:
        """Remove the row with ``key``; False when there is none."""
        k = self._key(key)
        with self.lock:
            lines = self._read()
            keep = [cells for cells, r in lines if r is None or key_of(r) != k]
            if len(keep) == len(lines):
                return False
            self._write(keep)
        return True

    def _key(self, obj: Any) -> Key:
        if not isinstance(obj, dict):
            raise RowRefused(f"a row's key must be a JSON object, not {type(obj).__name__}")
        try:
            return (str(_field(obj, "video")), int(_field(obj, "person_id")), int(_field(obj, "start")),
                    int(_field(obj, "end")), str(_field(obj, "annotator")).strip())
        except (TypeError, ValueError) as exc:
            raise RowRefused(f"a bad row key {obj!r}: {exc}") from None


__all__ = ["FULL_COLUMNS", "LabelStore", "RowRefused", "VideoPeople", "key_of", "row_json"]
