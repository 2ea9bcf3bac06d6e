"""What a model was trained on, as a checkpoint, a pretrained folder or an ONNX export records it:
the ``trained_on`` record (synthetic / bold / imported / unknown data, fingerprint, protocol, what
a fine-tuned model started from) and the warning predict gives for a model trained on synthetic
data. Read without torch, so predicting with an exported model does not load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The kinds of training data a checkpoint can record: a ``beenet synth`` dataset, a real BoLD-layout
#: dataset, a folder ``beenet import`` built from a user's own labelled videos, or not recorded
#: (checkpoints written before the record existed).
DATA_KINDS = ("synthetic", "bold", "imported", "unknown")
#: The record of a checkpoint that does not say what it was trained on.
UNKNOWN_DATA: dict[str, Any] = {"kind": "unknown", "fingerprint": None, "data": None, "protocol": None}
#: What predict prints (once per run) when a model trained on ``beenet synth`` data meets a video.
SYNTHETIC_WARNING = ("this model was trained on synthetic stick figures (beenet synth); its scores on "
                     "real video are not meaningful")



def trained_on(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The ``trained_on`` record of a loaded checkpoint (or pretrained folder); :data:`UNKNOWN_DATA`
    when it has none (written before the record existed) or an unreadable one."""
    rec = ckpt.get("trained_on")
    out = dict(UNKNOWN_DATA) if not isinstance(rec, dict) or rec.get("kind") not in DATA_KINDS \
        else {**UNKNOWN_DATA, **rec}
    tuned = fine_tuned_from(ckpt)
    if tuned is not None:
        out["fine_tuned_from"] = tuned
    return out


def fine_tuned_from(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """What a fine-tuned model started from (``beenet train --init``, recorded under
    ``pretrained_weights["init"]``): ``{"name", "sha256", "epoch"}`` (the file's name, never its
    full path: the record travels with shared models and prediction tables); None for a model
    trained from scratch or from published weights."""
    rec = (ckpt.get("pretrained_weights") or {}).get("init") if isinstance(ckpt.get("pretrained_weights"), dict) \
        else None
    if not isinstance(rec, dict) or not rec.get("sha256"):
        return None
    name = Path(str(rec.get("file") or rec.get("source") or "")).name
    return {"name": name, "sha256": str(rec["sha256"]), "epoch": rec.get("epoch")}
