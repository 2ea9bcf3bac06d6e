"""What a run leaves behind and what inference reads: checkpoints, exported pretrained folders, the
ONNX model description, and :func:`load_model`, the one loader of a checkpoint, a folder or a Hub id.

Training writes these and inference, evaluation and export read them; none of them reaches up into
training or inference.
"""

from beenet.artifacts.loader import load_model

__all__ = ["load_model"]
