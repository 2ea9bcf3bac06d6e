"""The labels file of ``beenet import``: one row per (video, person, span, annotator).

Two forms, told apart by their number of columns (a header row whose first cell is ``video`` is
skipped; the forms may be mixed in one file):

* full (34 columns, what ``beenet label`` writes):
  ``video,person_id,start_frame,end_frame,annotator,<26 categories>,valence,arousal,dominance``;
* plain (30 columns, one person per video): ``video,<26 categories>,valence,arousal,dominance``;
  the person is the one the tracker followed longest, the span the frames they are tracked in.

Categories are BoLD's 26 in CSV order (:data:`beenet.labels.CATEGORIES`), each a number in
[0, 1] (an annotator ticks a category: 1); valence, arousal and dominance are on BoLD's scale,
1 to 10. A row that breaks a rule is not read: :func:`read_labels` returns it as a
:class:`Problem` naming the file and line, and reads the others.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from beenet.errors import DataNotFoundError
from beenet.labels import CATEGORIES, NUM_CATEGORIES, NUM_VAD, VAD_NAMES

#: Columns of the full form and of the plain form.
FULL_COLUMNS = 5 + NUM_CATEGORIES + NUM_VAD
PLAIN_COLUMNS = 1 + NUM_CATEGORIES + NUM_VAD
#: The header of the full form (``beenet label`` writes it; the reader skips it).
FULL_HEADER = ["video", "person_id", "start_frame", "end_frame", "annotator", *CATEGORIES, *VAD_NAMES]
#: BoLD's annotators set valence, arousal and dominance on a 1 to 10 scale.
VAD_RANGE = (1.0, 10.0)


@dataclass(frozen=True)
class LabelRow:
    """One annotator's labels of one person over one span. ``person_id``, ``start`` and ``end``
    are None in the plain form (the person and span come from the tracker)."""

    video: str
    person_id: int | None
    start: int | None
    end: int | None
    annotator: str
    categories: tuple[float, ...]
    vad: tuple[float, float, float]
    line: int

    @property
    def plain(self) -> bool:
        return self.person_id is None


@dataclass(frozen=True)
class Problem:
    """Why a row (or a video) was not imported: ``where`` names the file and line."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class RowError(Exception):
    """Why one row cannot be read (:func:`parse_row`); ``beenet label``'s server answers with it."""


_Bad = RowError


def _number(cell: str, what: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise _Bad(f"{what} is not a number: {cell!r}") from None
    if not math.isfinite(value):
        raise _Bad(f"{what} is not finite: {cell!r}")
    return value


def _frame(cell: str, what: str) -> int:
    value = _number(cell, what)
    if value != int(value) or value < 0:
        raise _Bad(f"{what} must be a frame number (an integer >= 0): {cell!r}")
    return int(value)


def _scores(cells: list[str]) -> tuple[tuple[float, ...], tuple[float, float, float]]:
    cats = []
    for name, cell in zip(CATEGORIES, cells[:NUM_CATEGORIES]):
        v = _number(cell, f"category {name}")
        if not 0.0 <= v <= 1.0:
            raise _Bad(f"category {name} must be 0 or 1 (or a score in [0, 1]): {cell!r}")
        cats.append(v)
    vad = []
    lo, hi = VAD_RANGE
    for name, cell in zip(VAD_NAMES, cells[NUM_CATEGORIES:]):
        v = _number(cell, name)
        if not lo <= v <= hi:
            raise _Bad(f"{name} must be in [{lo:g}, {hi:g}] (BoLD's scale): {cell!r}")
        vad.append(v)
    return tuple(cats), (vad[0], vad[1], vad[2])


def parse_row(cells: list[str], line: int) -> LabelRow:
    """One row of either form; raises :class:`RowError` with the reason."""
    cells = [c.strip() for c in cells]
    if not cells[0]:
        raise _Bad("the video (column 1) is empty")
    if len(cells) == FULL_COLUMNS:
        pid = _frame(cells[1], "person_id")
        start, end = _frame(cells[2], "start_frame"), _frame(cells[3], "end_frame")
        if end < start:
            raise _Bad(f"end_frame {end} is before start_frame {start}")
        cats, vad = _scores(cells[5:])
        return LabelRow(cells[0], pid, start, end, cells[4], cats, vad, line)
    if len(cells) == PLAIN_COLUMNS:
        cats, vad = _scores(cells[1:])
        return LabelRow(cells[0], None, None, None, "", cats, vad, line)
    raise _Bad(f"expected {FULL_COLUMNS} columns (video,person_id,start_frame,end_frame,annotator,"
               f"<26 categories>,valence,arousal,dominance) or {PLAIN_COLUMNS} (video,<26 categories>,"
               f"valence,arousal,dominance), found {len(cells)}")


def read_labels(path: str | Path) -> tuple[list[LabelRow], list[Problem]]:
    """The rows of a labels file that can be read, and a :class:`Problem` for each that cannot."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such labels file")
    rows: list[LabelRow] = []
    problems: list[Problem] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for line, cells in enumerate(csv.reader(fh), start=1):
            if not cells or all(not c.strip() for c in cells):
                continue
            if cells[0].strip().lower() == "video":
                continue  # a header row
            try:
                rows.append(parse_row(cells, line))
            except _Bad as exc:
                problems.append(Problem(f"{path}, line {line}", str(exc)))
    return rows, problems
