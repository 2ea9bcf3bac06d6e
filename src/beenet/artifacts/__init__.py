"""What a run leaves behind and what inference reads: checkpoints, exported pretrained folders, the
ONNX model description, and :func:`load_model`, the one loader of a checkpoint, a folder or a Hub id.

Training writes these and inference, evaluation and export read them; none of them reaches up into
training or inference. :func:`load_model` (torch) loads on first use, so the modules that read an
exported model's description (:mod:`beenet.artifacts.spec`) load without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from beenet.artifacts.loader import load_model

__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from beenet.artifacts.loader import load_model  # lazy: loads torch; the package's other modules do not need it

        return load_model
    raise AttributeError(f"module 'beenet.artifacts' has no attribute {name!r}")
