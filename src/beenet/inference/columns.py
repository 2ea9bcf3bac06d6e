"""The columns and file formats of the prediction tables, without pandas.

:mod:`beenet.inference.table` (the tables themselves, pandas DataFrames) re-exports these names;
the command line and pass 1 read them from here, so that ``beenet predict`` reaches its first
frame (and ``--help``) without importing pandas (about 0.3-0.6 s; docs/predict.md, "Start-up").
"""

from __future__ import annotations

from beenet.inference.frame_columns import PER_FRAME_COLUMNS
from beenet.labels import CATEGORIES, VAD_NAMES

#: Columns that say where and when (in this order, first).
ID_COLUMNS: tuple[str, ...] = (
    "video", "person_id", "start_frame", "end_frame", "start_s", "end_s",
    "box_x", "box_y", "box_w", "box_h",
)
BOX_COLUMNS: tuple[str, ...] = ("box_x", "box_y", "box_w", "box_h")
#: The fixed columns of every table, in order; per-stream columns (``<stream>.<label>``) follow.
COLUMNS: tuple[str, ...] = ID_COLUMNS + CATEGORIES + VAD_NAMES
#: Labels of one stream's 29 outputs (26 categories, then VAD on the raw scale).
STREAM_LABELS: tuple[str, ...] = CATEGORIES + VAD_NAMES
#: The per-frame table (``<stem>_frames.csv``): one row per person and frame (the columns of
#: :data:`beenet.inference.frame_columns.PER_FRAME_COLUMNS`), with the scores of the window
#: covering the frame (see :func:`beenet.inference.results.frames_table`).
FRAME_COLUMNS: tuple[str, ...] = ("video", "frame", "time_s", *PER_FRAME_COLUMNS) + CATEGORIES + VAD_NAMES
FORMATS: tuple[str, ...] = ("csv", "json", "parquet")
#: The metadata of a table. ``trained_on``: the checkpoint's training data record (kind synthetic /
#: bold / unknown, fingerprint, data, protocol). ``settings``: how the table was made (pose backend
#: and its options, tracker thresholds, window, stride, min_presence, engine, sampling, ...), so a
#: table says how to reproduce it. Tables written before a key existed read back with it None.
META_KEYS: tuple[str, ...] = ("model", "checkpoint_sha256", "beenet_version", "video", "fps",
                              "trained_on", "settings")


def stream_columns(stream: str) -> list[str]:
    """The 29 column names of one stream's scores: ``"<stream>.<label>"``."""
    return [f"{stream}.{label}" for label in STREAM_LABELS]
