"""Evaluation: predictions CSV read/write, scoring reports, plots, and evaluation of checkpoints.

Light on import: the plotting module (matplotlib) and the checkpoint evaluator (models, data) are
imported from their own modules, ``beenet.evaluation.plots`` and ``beenet.evaluation.evaluate``.
"""

from __future__ import annotations

from beenet.evaluation.predictions import (
    PREDICTION_COLUMNS,
    align_predictions,
    instance_targets,
    read_predictions,
    write_predictions,
)
from beenet.evaluation.report import format_scores

__all__ = [
    "PREDICTION_COLUMNS",
    "align_predictions",
    "format_scores",
    "instance_targets",
    "read_predictions",
    "write_predictions",
]
