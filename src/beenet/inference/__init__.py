"""Prediction on any video: pose, tracking, windows, the model, tables, pictures and ONNX.

The heavy modules load lazily; ``from beenet.inference import Predictor`` is the entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.predictor import Predictor, VideoResult
    from beenet.inference.table import PredictionTable, read_table

__all__ = ["Predictor", "VideoResult", "PredictionTable", "read_table"]


def __getattr__(name: str) -> Any:
    if name in ("Predictor", "VideoResult"):
        from beenet.inference import predictor  # lazy: 'import beenet.inference' stays light (no torch)

        return getattr(predictor, name)
    if name in ("PredictionTable", "read_table"):
        from beenet.inference import table  # lazy: the same, for the table module

        return getattr(table, name)
    raise AttributeError(f"module 'beenet.inference' has no attribute {name!r}")
