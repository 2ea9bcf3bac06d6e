"""The predictions table: one row per (person, window), a pandas DataFrame that knows its source.

Like py-feat's ``Fex``, :class:`PredictionTable` is a DataFrame subclass whose metadata (model,
checkpoint hash, beenet version, video, fps, what the model was trained on, and the settings that
made the table: pose backend, tracker, window, stride, engine, sampling) survives slicing, with accessors for its column groups
(``.emotions``, ``.vad``, ``.boxes``, ``.streams``). Writers keep the metadata: parquet in the
schema metadata, JSON inside the document, CSV in a ``<name>.meta.json`` sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from beenet.atomic import atomic_open, atomic_path, to_builtins
from beenet.atomic import write_text as atomic_write_text
from beenet.errors import BeenetError, PredictionsError
from beenet.inference.columns import (  # noqa: F401 - the table's names, re-exported
    BOX_COLUMNS,
    COLUMNS,
    FORMATS,
    FRAME_COLUMNS,
    ID_COLUMNS,
    META_KEYS,
    STREAM_LABELS,
    stream_columns,
)
from beenet.labels import CATEGORIES, VAD_NAMES

_INT_COLUMNS = ("person_id", "start_frame", "end_frame")


class PredictionTable(pd.DataFrame):
    """Predictions of one video (or several, concatenated): one row per person and window."""

    _metadata = list(META_KEYS)

    @property
    def _constructor(self) -> type["PredictionTable"]:
        return PredictionTable

    # -- column groups -------------------------------------------------------------------------
    @property
    def emotions(self) -> pd.DataFrame:
        """The 26 category scores (BoLD CSV order)."""
        return pd.DataFrame(self.loc[:, list(CATEGORIES)])

    @property
    def vad(self) -> pd.DataFrame:
        """Valence, arousal, dominance on the raw BoLD scale (about 1..10)."""
        return pd.DataFrame(self.loc[:, list(VAD_NAMES)])

    @property
    def boxes(self) -> pd.DataFrame:
        """The person's box over the window, ``box_x, box_y, box_w, box_h`` in pixels."""
        return pd.DataFrame(self.loc[:, list(BOX_COLUMNS)])

    @property
    def stream_names(self) -> list[str]:
        """Streams whose scores are in the table (empty unless asked for)."""
        names: list[str] = []
        for c in self.columns:
            if isinstance(c, str) and c.endswith(".dominance"):
                names.append(c[: -len(".dominance")])
        return names

    def stream(self, name: str) -> pd.DataFrame:
        """One stream's 29 scores, columns named like the fused ones."""
        cols = stream_columns(name)
        missing = [c for c in cols if c not in self.columns]
        if missing:
            raise KeyError(f"no scores of stream {name!r} in this table (streams: {self.stream_names})")
        out = pd.DataFrame(self.loc[:, cols])
        out.columns = list(STREAM_LABELS)
        return out

    @property
    def metadata(self) -> dict[str, Any]:
        return {k: getattr(self, k, None) for k in META_KEYS}

    def set_metadata(self, **meta: Any) -> "PredictionTable":
        for k, v in meta.items():
            if k not in META_KEYS:
                raise KeyError(f"unknown metadata key {k!r}; known: {', '.join(META_KEYS)}")
            object.__setattr__(self, k, v)
        return self

    def top_emotions(self, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per row, the ``k`` highest category scores as (name, score)."""
        arr = self.emotions.to_numpy(dtype=np.float64)
        order = np.argsort(-arr, axis=1, kind="stable")[:, :k]
        return [[(CATEGORIES[j], float(arr[i, j])) for j in row] for i, row in enumerate(order)]

    # -- writing -------------------------------------------------------------------------------
    def write(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write to ``path`` as csv / json / parquet (from ``fmt`` or the suffix), metadata kept."""
        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".")).lower()
        if fmt not in FORMATS:
            raise BeenetError(f"{path}: unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
        plain = pd.DataFrame(self)
        meta = _jsonable(self.metadata)
        if fmt == "csv":
            with atomic_open(path, newline="") as fh:
                plain.to_csv(fh, index=False, float_format="%.6g")
            atomic_write_text(meta_sidecar(path), json.dumps(meta, indent=2) + "\n")
        elif fmt == "json":
            doc = {"metadata": meta, "columns": list(plain.columns),
                   "rows": json.loads(plain.to_json(orient="records", double_precision=10))}
            with atomic_open(path) as fh:
                fh.write(json.dumps(doc) + "\n")
        else:
            try:
                import pyarrow as pa  # lazy: pyarrow is the optional 'parquet' extra
                import pyarrow.parquet as pq  # lazy: the optional 'parquet' extra
            except ImportError as exc:
                raise BeenetError(
                    f"{path}: writing parquet needs pyarrow: pip install pyarrow (or use --format csv,json)"
                ) from exc
            table = pa.Table.from_pandas(plain, preserve_index=False)
            schema_meta = dict(table.schema.metadata or {})
            schema_meta[b"beenet"] = json.dumps(meta).encode()
            with atomic_path(path) as tmp:
                pq.write_table(table.replace_schema_metadata(schema_meta), str(tmp))
        return path


def meta_sidecar(path: str | Path) -> Path:
    """Where a CSV's metadata goes: ``x.csv`` -> ``x.meta.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".meta.json")


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: to_builtins(v) for k, v in meta.items()}


def make_table(rows: dict[str, Any], streams: dict[str, np.ndarray] | None = None, **meta: Any) -> PredictionTable:
    """Build a table from column arrays (the fixed columns) and optional per-stream ``[N, 29]``."""
    data: dict[str, Any] = {}
    n = len(rows["person_id"])
    for c in COLUMNS:
        if c not in rows:
            raise KeyError(f"make_table: missing column {c!r}")
        data[c] = rows[c]
    for name, arr in (streams or {}).items():
        arr = np.asarray(arr)
        if arr.shape != (n, len(STREAM_LABELS)):
            raise ValueError(f"stream {name!r}: expected shape {(n, len(STREAM_LABELS))}, got {arr.shape}")
        for j, col in enumerate(stream_columns(name)):
            data[col] = arr[:, j]
    df = PredictionTable(data)
    for c in _INT_COLUMNS:
        df[c] = df[c].astype(np.int64)
    df["video"] = df["video"].astype(str)
    return df.set_metadata(**meta)


def concat_tables(tables: list[PredictionTable]) -> PredictionTable:
    """Several videos' tables as one, in order (the ``video`` column tells them apart).

    Metadata the tables share is kept; a key whose values differ (``video``, and ``fps`` when the
    frame rates differ) becomes None. Stream columns missing from some tables are NaN there.
    """
    if not tables:
        return empty_table()
    out = PredictionTable(pd.concat([pd.DataFrame(t) for t in tables], ignore_index=True))
    meta = {}
    for key in META_KEYS:
        values = [t.metadata[key] for t in tables]
        meta[key] = values[0] if all(v == values[0] for v in values) else None
    return out.set_metadata(**meta)


def empty_table(**meta: Any) -> PredictionTable:
    """A table with the fixed columns and no rows (a video where nobody was found)."""
    cols: dict[str, Any] = {c: np.zeros(0, dtype=np.float64) for c in COLUMNS}
    cols["video"] = np.zeros(0, dtype=object)
    for c in _INT_COLUMNS:
        cols[c] = np.zeros(0, dtype=np.int64)
    return make_table(cols, **meta)


class FrameTable(PredictionTable):
    """Per-frame predictions (:data:`FRAME_COLUMNS`): one row per person and frame; the same
    accessors and writers as :class:`PredictionTable`."""

    @property
    def _constructor(self) -> type["FrameTable"]:
        return FrameTable


def empty_frames_table(**meta: Any) -> FrameTable:
    """A per-frame table with its columns and no rows (a video where nobody was found)."""
    cols: dict[str, Any] = {c: np.zeros(0, dtype=np.float64) for c in FRAME_COLUMNS}
    cols["video"] = np.zeros(0, dtype=object)
    cols["frame"] = np.zeros(0, dtype=np.int64)
    cols["person_id"] = np.zeros(0, dtype=np.int64)
    cols["interpolated"] = np.zeros(0, dtype=bool)
    cols["joints"] = np.zeros(0, dtype=np.int64)
    return FrameTable(cols).set_metadata(**meta)


def read_table_file(path: str | Path, what: str, columns: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows and the metadata of a table beenet wrote (csv + sidecar / json / parquet), checked
    to hold ``columns``; ``what`` names the kind of table in the errors. A file that cannot be
    parsed (cut short, not text, not the format its name says) is a :class:`PredictionsError`
    naming it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not path.is_file():
        raise PredictionsError(f"{path}: no such {what} file")
    if fmt not in FORMATS:
        raise PredictionsError(f"{path}: unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        df, meta = _read_rows(path, fmt, what)
    except PredictionsError:
        raise
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # pandas', json's and pyarrow's parse errors
        raise PredictionsError(f"{path}: not a readable {what} {fmt} file ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if not isinstance(meta, dict):
        raise PredictionsError(f"{path}: its metadata is not a JSON object")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PredictionsError(f"{path}: not a beenet {what}; missing columns {missing[:5]}")
    return df, meta


def _read_rows(path: Path, fmt: str, what: str) -> tuple[pd.DataFrame, Any]:
    """The rows and the metadata of ``path`` in its format, as parsed (parse errors raised as they are)."""
    meta: Any = {}
    if fmt == "csv":
        df = pd.read_csv(path, dtype={"video": str})
        side = meta_sidecar(path)
        if side.is_file():
            try:
                meta = json.loads(side.read_text())
            except ValueError as exc:
                raise PredictionsError(f"{side}: the metadata of {path.name} is not valid JSON ({exc})") from None
    elif fmt == "json":
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or "rows" not in doc or "columns" not in doc:
            raise PredictionsError(f"{path}: not a beenet {what} JSON (no 'columns'/'rows')")
        df = pd.DataFrame(doc["rows"], columns=doc["columns"])
        meta = doc.get("metadata") or {}
    else:  # parquet
        import pyarrow.parquet as pq  # lazy: the optional 'parquet' extra

        t = pq.read_table(path)
        raw = (t.schema.metadata or {}).get(b"beenet")
        meta = json.loads(raw) if raw else {}
        df = t.to_pandas()
    return df, meta


def _as_types(path: str | Path, df: pd.DataFrame, types: dict[str, Any]) -> None:
    """Each column of ``types`` converted in place, or a PredictionsError naming the file and column."""
    for column, kind in types.items():
        try:
            df[column] = df[column].astype(kind)
        except (ValueError, TypeError) as exc:
            raise PredictionsError(f"{path}: column {column!r} holds a value that is not "
                                   f"{'an integer' if kind is np.int64 else kind.__name__} ({exc})") from None


#: Per-frame columns added after tables were first written, and what an older table reads as
#: (``joints``, 2026-12-07: -1, not recorded).
LATER_FRAME_COLUMNS: dict[str, Any] = {"joints": -1}


def read_frames_table(path: str | Path) -> FrameTable:
    """Read a per-frame table written by ``beenet predict --per-frame`` (csv / json / parquet)."""
    df, meta = read_table_file(path, "per-frame table", tuple(c for c in FRAME_COLUMNS if c not in LATER_FRAME_COLUMNS))
    for column, value in LATER_FRAME_COLUMNS.items():  # a table written before the column was
        if column not in df.columns:
            df.insert(FRAME_COLUMNS.index(column), column, value)
    out = FrameTable(df)
    _as_types(path, out, {"frame": np.int64, "person_id": np.int64, "interpolated": bool, "joints": np.int64})
    return out.set_metadata(**{k: v for k, v in meta.items() if k in META_KEYS})


def read_table(path: str | Path) -> PredictionTable:
    """Read a table written by :meth:`PredictionTable.write` back, with its metadata."""
    df, meta = read_table_file(path, "predictions", COLUMNS)
    out = PredictionTable(df)
    _as_types(path, out, dict.fromkeys(_INT_COLUMNS, np.int64))
    # A table written before a key existed reads back with it None.
    return out.set_metadata(**{k: meta.get(k) for k in META_KEYS})
