"""Reading the BoLD release exactly as it is on disk: headerless annotation CSVs and the layout.

See ``docs/bold-format.md`` for the format. Every row is validated, so that a
misread column (the classic BoLD bug) fails loudly with the file and line instead of silently
shifting labels.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from beenet.data.splits import GROUP_OF_PROTOCOL, paper_split
from beenet.errors import BoLDFormatError, ConfigError, DataNotFoundError
from beenet.labels import NUM_CATEGORIES, NUM_VAD, VAD_SCALE

log = logging.getLogger(__name__)

#: Columns of a labelled annotation row: video, person, min/max frame, 26 categories, VAD,
#: gender, age, ethnicity, confidence.
NUM_COLUMNS = 4 + NUM_CATEGORIES + NUM_VAD + 4
#: A test_meta.csv row needs at least video, person, min/max frame.
MIN_TEST_COLUMNS = 4
COL_CATEGORIES = slice(4, 4 + NUM_CATEGORIES)
COL_VAD = slice(4 + NUM_CATEGORIES, 4 + NUM_CATEGORIES + NUM_VAD)
COL_EXTRA = 4 + NUM_CATEGORIES + NUM_VAD  # gender, age, ethnicity, confidence
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Annotation file of each split of the official protocol, and whether it carries labels.
#: The manifest ``beenet import`` writes at the top of a BoLD-layout folder it builds from a user's
#: own labelled videos (:mod:`beenet.importing.build`): such a folder is not BoLD.
IMPORT_MANIFEST = "beenet-import.json"
ANNOTATION_FILES: dict[str, tuple[str, bool]] = {
    "train": ("train.csv", True),
    "val": ("val.csv", True),
    "test": ("test_meta.csv", False),
}


@dataclass(frozen=True, eq=False)
class Instance:
    """One annotated (clip, person) of BoLD. Identified by :attr:`key`, not by ``==``."""

    video: str
    person_id: int
    min_frame: int
    max_frame: int
    categories: np.ndarray | None
    vad: np.ndarray | None
    gender: float | None
    age: float | None
    ethnicity: float | None
    confidence: float | None
    source: str
    line: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.video, self.person_id)

    @property
    def clip(self) -> str:
        return self.video

    @property
    def labelled(self) -> bool:
        return self.categories is not None

    def __repr__(self) -> str:
        return f"Instance({self.video!r}, person {self.person_id}, {self.source}:{self.line})"


class _BadRow(Exception):
    """Internal: why one row is rejected (turned into a BoLDFormatError or a bad_rows entry)."""


def _number(cell: str, column: int, what: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise _BadRow(f"column {column} ({what}) is not a number: {cell!r}") from None
    if not math.isfinite(value):
        raise _BadRow(f"column {column} ({what}) is not finite: {cell!r}")
    return value


def _integer(cell: str, column: int, what: str) -> int:
    value = _number(cell, column, what)
    if value != int(value):
        raise _BadRow(f"column {column} ({what}) is not an integer: {cell!r}")
    return int(value)


def _optional(cell: str, column: int, what: str) -> float | None:
    if cell == "":
        return None
    try:
        value = float(cell)
    except ValueError:
        raise _BadRow(f"column {column} ({what}) is neither a number nor empty: {cell!r}") from None
    return value if math.isfinite(value) else None


def _check_video(cell: str) -> str:
    if not cell:
        raise _BadRow("column 0 (video path) is empty")
    if not cell.endswith(".mp4"):
        hint = " (is there a header row? BoLD's CSVs have none)" if cell.lower() in ("video", "path", "filename") else ""
        raise _BadRow(f"column 0 (video path) does not end with .mp4: {cell!r}{hint}")
    path = PurePosixPath(cell)
    if path.is_absolute() or ".." in path.parts or "\\" in cell:
        raise _BadRow(f"column 0 (video path) must be relative to videos/ with '/' separators: {cell!r}")
    return cell


def _parse_row(row: list[str], labelled: bool, source: str, line: int) -> Instance:
    cells = [c.strip() for c in row]
    n = len(cells)
    if labelled and n != NUM_COLUMNS:
        raise _BadRow(f"expected {NUM_COLUMNS} columns in a labelled row, found {n}")
    if not labelled and not (MIN_TEST_COLUMNS <= n <= NUM_COLUMNS):
        raise _BadRow(f"expected {MIN_TEST_COLUMNS} to {NUM_COLUMNS} columns in a test row, found {n}")
    video = _check_video(cells[0])
    person_id = _integer(cells[1], 1, "person_id")
    min_frame = _integer(cells[2], 2, "min_frame")
    max_frame = _integer(cells[3], 3, "max_frame")
    if min_frame > max_frame:
        raise _BadRow(f"min_frame {min_frame} > max_frame {max_frame}")
    categories = vad = None
    extra: list[float | None] = [None] * 4
    if labelled:
        cats = []
        for col in range(COL_CATEGORIES.start, COL_CATEGORIES.stop):
            v = _number(cells[col], col, "category score")
            if not 0.0 <= v <= 1.0:
                raise _BadRow(f"column {col} (category score) is outside [0, 1]: {cells[col]!r}")
            cats.append(v)
        vads = []
        for col in range(COL_VAD.start, COL_VAD.stop):
            v = _number(cells[col], col, "valence/arousal/dominance")
            if not 0.0 <= v <= VAD_SCALE:
                raise _BadRow(f"column {col} (valence/arousal/dominance) is outside [0, {VAD_SCALE:g}]: {cells[col]!r}")
            vads.append(v)
        names = ("gender", "age", "ethnicity", "confidence")
        extra = [_optional(cells[COL_EXTRA + i], COL_EXTRA + i, names[i]) for i in range(4)]
        categories = np.asarray(cats, dtype=np.float32)
        vad = np.asarray(vads, dtype=np.float32)
    return Instance(
        video=video,
        person_id=person_id,
        min_frame=min_frame,
        max_frame=max_frame,
        categories=categories,
        vad=vad,
        gender=extra[0],
        age=extra[1],
        ethnicity=extra[2],
        confidence=extra[3],
        source=source,
        line=line,
    )


def read_annotations(
    path: str | Path, labelled: bool, bad_rows: list[dict] | None = None
) -> list[Instance]:
    """Read one headerless BoLD annotation CSV (train.csv / val.csv: ``labelled=True``;
    test_meta.csv: ``labelled=False``, labels ignored).

    Without ``bad_rows`` the first bad row raises :class:`BoLDFormatError` naming file and line.
    With a list, each bad row is appended as ``{"file", "line", "reason"}`` and skipped (what
    ``beenet data check`` uses to list every problem at once). Blank lines are ignored.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: annotation file not found")
    instances: list[Instance] = []
    seen: dict[tuple[str, int], int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for line, row in enumerate(csv.reader(fh), start=1):
                if not row or all(not c.strip() for c in row):
                    continue
                try:
                    inst = _parse_row(row, labelled, source, line)
                    first = seen.get(inst.key)
                    if first is not None:
                        raise _BadRow(
                            f"duplicate instance (video {inst.video!r}, person {inst.person_id}), "
                            f"first on line {first}"
                        )
                except _BadRow as exc:
                    if bad_rows is None:
                        raise BoLDFormatError(source, line, str(exc)) from None
                    bad_rows.append({"file": source, "line": line, "reason": str(exc)})
                    continue
                seen[inst.key] = line
                instances.append(inst)
    except UnicodeDecodeError as exc:
        raise BoLDFormatError(source, None, f"not a UTF-8 text CSV ({exc.reason})") from None
    except csv.Error as exc:
        raise BoLDFormatError(source, None, f"not a readable CSV ({exc})") from None
    log.debug("read %d instances from %s", len(instances), source)
    return instances


class BoLD:
    """A BoLD directory (``BOLD_public/`` or the output of ``beenet synth``).

    ``splits_dir`` is where the ``paper`` split is written when ``<root>/splits`` is read-only
    (default: ``~/.cache/beenet/splits``).
    """

    def __init__(self, root: str | Path, splits_dir: str | Path | None = None) -> None:
        self.root = Path(root).expanduser()
        self.splits_dir = Path(splits_dir).expanduser() if splits_dir is not None else None
        self._cache: dict[tuple[str, str], list[Instance]] = {}
        self._paper: dict[tuple[str, int], dict[str, list[Instance]]] = {}
        if not self.root.is_dir():
            raise DataNotFoundError(f"{self.root}: no such directory (expected a BoLD directory, e.g. BOLD_public/)")
        missing = [d for d in ("annotations", "videos") if not (self.root / d).is_dir()]
        if not missing and not any((self.annotations_dir / f).is_file() for f, _ in ANNOTATION_FILES.values()):
            missing = [f"annotations/{f}" for f, _ in ANNOTATION_FILES.values()]
        if missing:
            hint = ""
            for child in ("BOLD_public", "BoLD", "bold"):
                if (self.root / child / "annotations").is_dir():
                    hint = f"; did you mean {self.root / child}?"
                    break
            raise DataNotFoundError(
                f"{self.root}: not a BoLD directory, missing {', '.join(missing)} "
                f"(expected annotations/train.csv, annotations/val.csv, videos/ and joints/){hint}"
            )

    @property
    def annotations_dir(self) -> Path:
        return self.root / "annotations"

    @property
    def videos_dir(self) -> Path:
        return self.root / "videos"

    @property
    def joints_dir(self) -> Path:
        return self.root / "joints"

    def annotation_path(self, split: str) -> Path:
        """The CSV of ``split`` in the official protocol (train.csv, val.csv, test_meta.csv)."""
        if split not in ANNOTATION_FILES:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return self.annotations_dir / ANNOTATION_FILES[split][0]

    def video_path(self, video: str) -> Path:
        return self.videos_dir / video

    def video_paths(self, videos: Iterable[str]) -> dict[str, Path]:
        """``{video: path to its mp4}`` for ``videos`` (first-seen order, each once): the clips as
        :func:`beenet.context.build.load_context` and the context cache take them."""
        return {str(v): self.video_path(str(v)) for v in videos}

    def joints_path(self, video: str) -> Path:
        """``videos/003/x.mp4/0001.mp4`` -> ``joints/003/x.mp4/0001.npy`` (file name only)."""
        return self.joints_dir / PurePosixPath(video).with_suffix(".npy")

    def annotations(self, split: str) -> list[Instance]:
        """Every instance of one official annotation file, in file order (cached)."""
        key = ("official", split)
        if key not in self._cache:
            path = self.annotation_path(split)
            if not path.is_file():
                raise DataNotFoundError(f"{path}: annotation file of the {split!r} split not found")
            self._cache[key] = read_annotations(path, labelled=ANNOTATION_FILES[split][1])
        return self._cache[key]

    def instances(self, split: str, protocol: str = "official", seed: int = 42) -> list[Instance]:
        """The instances of ``split`` (train / val / test) under ``protocol`` (official / paper /
        paper-video; ``beenet.data.splits``)."""
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if protocol == "official":
            return list(self.annotations(split))
        if protocol in GROUP_OF_PROTOCOL:
            if (protocol, seed) not in self._paper:
                self._paper[protocol, seed] = paper_split(self, seed=seed, splits_dir=self.splits_dir, protocol=protocol)
            return list(self._paper[protocol, seed][split])
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of official, {', '.join(GROUP_OF_PROTOCOL)}")

    def __repr__(self) -> str:
        return f"BoLD({str(self.root)!r})"
