"""beenet: bodily expression of emotion (BEE-NET and beyond) in in-the-wild video.

The heavy parts (torch models, the predictor) are imported lazily so that
``import beenet`` and ``beenet --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beenet.version import __version__

__all__ = ["__version__", "Predictor", "CATEGORIES", "VAD_NAMES"]

from beenet.labels import CATEGORIES, VAD_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.predictor import Predictor


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from beenet.inference.predictor import Predictor  # lazy: 'import beenet' stays light (no torch)

        return Predictor
    raise AttributeError(f"module 'beenet' has no attribute {name!r}")
