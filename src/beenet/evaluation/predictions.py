"""The predictions CSV: what ``beenet eval`` scores, the test submission, and ``beenet predict`` output.

Header ``video,person_id,<26 categories in BoLD CSV order>,valence,arousal,dominance``; one row per
instance, matched to the annotations by ``(video, person_id)``, never by row order, so that a file
sorted differently still scores the same.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from beenet.atomic import atomic_open
from beenet.errors import PredictionsError
from beenet.labels import CATEGORIES, NUM_CATEGORIES, NUM_VAD, VAD_NAMES, VAD_SCALE

log = logging.getLogger(__name__)

#: The columns of a predictions CSV, in the order beenet writes them.
PREDICTION_COLUMNS: tuple[str, ...] = ("video", "person_id", *CATEGORIES, *VAD_NAMES)
#: The numeric score columns (categories then VAD).
SCORE_COLUMNS: tuple[str, ...] = (*CATEGORIES, *VAD_NAMES)

#: How many offending keys an error message lists before giving the count only.
_SHOW = 5

Key = tuple[str, int]


class _InstanceLike(Protocol):
    video: str
    person_id: int


def write_predictions(
    path: str | Path,
    keys: Sequence[Key],
    cat_scores: np.ndarray | torch.Tensor,
    vad: np.ndarray | torch.Tensor,
) -> Path:
    """Write one row per ``(video, person_id)`` key atomically (temp file, then ``os.replace``).

    A reader never sees a half-written file, even when a run is killed while writing.
    """
    path = Path(path)
    cats = _as_matrix(cat_scores, NUM_CATEGORIES, "category scores")
    dims = _as_matrix(vad, NUM_VAD, "VAD predictions")
    if not (len(keys) == cats.shape[0] == dims.shape[0]):
        raise PredictionsError(
            f"cannot write {path}: {len(keys)} keys, {cats.shape[0]} rows of category scores and "
            f"{dims.shape[0]} rows of VAD; pass one row per instance to each"
        )
    for name, arr in (("category scores", cats), ("VAD predictions", dims)):
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            row = int(bad[0, 0])
            raise PredictionsError(
                f"cannot write {path}: {name} hold NaN/inf, first for instance {tuple(keys[row])}"
            )
    frame = pd.DataFrame(np.concatenate([cats, dims], axis=1), columns=list(SCORE_COLUMNS))
    frame.insert(0, "person_id", [int(k[1]) for k in keys])
    frame.insert(0, "video", [str(k[0]) for k in keys])
    with atomic_open(path, newline="") as handle:
        frame.to_csv(handle, index=False)
    return path


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions CSV into a DataFrame with the columns of PREDICTION_COLUMNS.

    Columns may come in any order (they are put back in the canonical order). Raises
    :class:`PredictionsError` naming missing, unexpected or repeated columns, and the line of any
    value that is not a finite number (or, for ``person_id``, not an integer).
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: tolerate Excel's BOM
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise PredictionsError(f"{path}: not a UTF-8 text CSV ({exc.reason})") from None
    except csv.Error as exc:
        raise PredictionsError(f"{path}: not a readable CSV ({exc})") from None
    if not rows:
        raise PredictionsError(f"{path}: the file is empty; expected the header {','.join(PREDICTION_COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    rows = rows[1:]
    _check_header(path, header)

    index = {name: header.index(name) for name in PREDICTION_COLUMNS}
    videos: list[str] = []
    persons: list[int] = []
    values = np.empty((len(rows), len(SCORE_COLUMNS)), dtype=np.float64)
    kept = 0
    for offset, row in enumerate(rows):
        line = offset + 2  # 1-based, after the header
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise PredictionsError(
                f"{path}, line {line}: {len(row)} fields where the header has {len(header)}"
            )
        video = row[index["video"]].strip()
        if not video:
            raise PredictionsError(f"{path}, line {line}: empty 'video' value")
        videos.append(video)
        persons.append(_parse_person(path, line, row[index["person_id"]]))
        for j, name in enumerate(SCORE_COLUMNS):
            values[kept, j] = _parse_score(path, line, name, row[index[name]])
        kept += 1
    warn_out_of_range(path, values[:kept])
    frame = pd.DataFrame(values[:kept], columns=list(SCORE_COLUMNS))
    frame.insert(0, "person_id", np.asarray(persons, dtype=np.int64))
    frame.insert(0, "video", pd.Series(videos, dtype=object))
    frame.attrs["source"] = str(path)
    return frame


def out_of_range(values: np.ndarray) -> list[tuple[str, list[str], int]]:
    """Per label group whose values leave the model's range (categories [0, 1], VAD [0, 10]):
    ``(range text, columns, rows)``, for the score columns ``values [N, 29]``."""
    found = []
    for names, lo, hi, cols in ((CATEGORIES, 0.0, 1.0, slice(0, NUM_CATEGORIES)),
                                (VAD_NAMES, 0.0, float(VAD_SCALE), slice(NUM_CATEGORIES, None))):
        block = values[:, cols]
        outside = (block < lo) | (block > hi)
        if outside.any():
            columns = [n for n, bad in zip(names, outside.any(axis=0)) if bad]
            found.append((f"[{lo:g}, {hi:g}]", columns, int(outside.any(axis=1).sum())))
    return found


def warn_out_of_range(path: str | Path, values: np.ndarray) -> None:
    """Log a warning naming the columns and the number of rows outside the usual ranges.

    A warning, not a refusal: the paper's ``scale`` fusion form scores categories up to
    1/lambda, and ranking metrics (mAP, mRA) do not need [0, 1]; but a VAD of -400 or logits in
    place of scores make the R^2 (and the ERS) meaningless, so the reader is told.
    """
    for rng, columns, rows in out_of_range(values):
        shown = ", ".join(columns[:_SHOW]) + (f" and {len(columns) - _SHOW} more" if len(columns) > _SHOW else "")
        what = "category scores" if columns[0] in CATEGORIES else "VAD values"
        log.warning("%s: %d row(s) have %s outside %s (columns %s); the scores are used as they are. "
                    "Check that the file holds scores on the BoLD scale, not logits or another scale",
                    path, rows, what, rng, shown)


def align_predictions(df: pd.DataFrame, instances: Iterable[_InstanceLike]) -> tuple[np.ndarray, np.ndarray]:
    """Category scores ``[N, 26]`` and VAD ``[N, 3]`` (float64) in the order of ``instances``.

    Rows are matched by ``(video, person_id)``. Duplicate rows, instances without a row and rows
    for no instance each raise :class:`PredictionsError` naming the first few keys and the count.
    """
    source = df.attrs.get("source", "the predictions")
    missing_cols = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing_cols:
        raise PredictionsError(f"{source}: missing columns {missing_cols}")
    keys = [(str(v), int(p)) for v, p in zip(df["video"], df["person_id"])]
    counts = Counter(keys)
    duplicates = [k for k, c in counts.items() if c > 1]
    if duplicates:
        raise PredictionsError(
            f"{source}: {len(duplicates)} instance(s) have more than one row, e.g. {_first(duplicates)}; "
            "keep one row per (video, person_id)"
        )
    row_of = {k: i for i, k in enumerate(keys)}
    wanted = [(str(inst.video), int(inst.person_id)) for inst in instances]
    missing = [k for k in wanted if k not in row_of]
    wanted_set = set(wanted)
    unknown = [k for k in keys if k not in wanted_set]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(wanted)} instance(s) have no row, e.g. {_first(missing)}")
    if unknown:
        problems.append(
            f"{len(unknown)} row(s) match no instance of this split, e.g. {_first(unknown)} "
            "(wrong split or protocol?)"
        )
    if problems:
        raise PredictionsError(f"{source}: " + "; ".join(problems))
    order = np.fromiter((row_of[k] for k in wanted), dtype=np.int64, count=len(wanted))
    cats = df[list(CATEGORIES)].to_numpy(dtype=np.float64)[order]
    vad = df[list(VAD_NAMES)].to_numpy(dtype=np.float64)[order]
    return cats, vad


def instance_targets(instances: Sequence[Any], what: str = "these instances") -> tuple[np.ndarray, np.ndarray]:
    """Stack the labels of instances into ``[N, 26]`` categories and ``[N, 3]`` VAD (float64).

    Raises :class:`PredictionsError` when any instance is unlabelled (BoLD's test rows), naming it.
    """
    unlabelled = [inst for inst in instances if inst.categories is None or inst.vad is None]
    if unlabelled:
        first = unlabelled[0]
        raise PredictionsError(
            f"{len(unlabelled)} of {len(instances)} instance(s) of {what} have no labels, e.g. "
            f"({first.video!r}, {first.person_id}); only labelled instances can be scored"
        )
    if not instances:
        return np.zeros((0, NUM_CATEGORIES)), np.zeros((0, NUM_VAD))
    cats = np.stack([np.asarray(inst.categories, dtype=np.float64) for inst in instances])
    vad = np.stack([np.asarray(inst.vad, dtype=np.float64) for inst in instances])
    return cats, vad


def _check_header(path: Path, header: list[str]) -> None:
    counts = Counter(header)
    repeated = sorted(name for name, c in counts.items() if c > 1)
    missing = [c for c in PREDICTION_COLUMNS if c not in counts]
    unexpected = [c for c in header if c not in PREDICTION_COLUMNS]
    if repeated or missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unexpected:
            parts.append(f"unexpected columns {unexpected}")
        if repeated:
            parts.append(f"repeated columns {repeated}")
        raise PredictionsError(
            f"{path}: bad header: {'; '.join(parts)}. Expected: {','.join(PREDICTION_COLUMNS)}"
        )


def _parse_person(path: Path, line: int, text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise PredictionsError(f"{path}, line {line}: person_id {text!r} is not an integer")
    return int(value)


def _parse_score(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PredictionsError(
            f"{path}, line {line}, column {column!r}: {text!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise PredictionsError(
            f"{path}, line {line}, column {column!r}: {text!r} is not a finite number"
        )
    return value


def _as_matrix(x: np.ndarray | torch.Tensor, width: int, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise PredictionsError(f"{what} must have shape [N, {width}], got {list(arr.shape)}")
    return arr


def _first(keys: Sequence[Key]) -> str:
    shown = ", ".join(f"({v!r}, {p})" for v, p in keys[:_SHOW])
    return shown + (f" and {len(keys) - _SHOW} more" if len(keys) > _SHOW else "")
