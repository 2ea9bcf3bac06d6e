"""Prediction on any video: pose, tracking, windows, the model, tables, pictures and ONNX.

The heavy modules load lazily; ``from beenet.inference import Predictor`` is the entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.predictor import Predictor
    from beenet.inference.results import VideoResult
    from beenet.inference.table import PredictionTable, read_table

__all__ = ["Predictor", "VideoResult", "PredictionTable", "read_table"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from beenet.inference import predictor  # lazy: loads torch; ``import beenet.inference`` stays light

        return predictor.Predictor
    if name == "VideoResult":
        from beenet.inference import results  # lazy: loads pandas; ``import beenet.inference`` stays light

        return results.VideoResult
    if name in ("PredictionTable", "read_table"):
        from beenet.inference import table  # lazy: loads pandas; ``import beenet.inference`` stays light

        return getattr(table, name)
    raise AttributeError(f"module 'beenet.inference' has no attribute {name!r}")
