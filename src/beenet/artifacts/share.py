"""Share a model: write a ``beenet train`` checkpoint as a pretrained folder (safetensors weights,
``config.json``, a model card). The folder's format and its reader are :mod:`beenet.artifacts.pretrained`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save

from beenet.artifacts.checkpoint import load_checkpoint
from beenet.artifacts.provenance import trained_on
from beenet.artifacts.pretrained import CARD_FILE, CONFIG_FILE, FOLDER_FILES, FORMAT, FORMAT_VERSION, WEIGHTS_FILE
from beenet.artifacts.sizes import checked_model_config
from beenet.artifacts.spec import describe_model
from beenet.atomic import atomic_open, to_builtins, write_json, write_text
from beenet.errors import BeenetError, CheckpointError
from beenet.labels import CATEGORIES, VAD_NAMES
from beenet.metrics import format_headline
from beenet.models import ModelConfig
from beenet.version import __version__
from beenet.weights import file_sha256

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- writing a folder


def export_pretrained(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], *,
                      overwrite: bool = False, training_data: str | None = None) -> Path:
    """Write ``checkpoint`` (a ``beenet train`` .pt) as a pretrained folder ``out``.

    ``out`` must be missing or empty unless ``overwrite``. ``training_data`` describes the data the
    model was trained on (the checkpoint does not record the data directory); it goes in the card.
    Every file is written atomically. Returns ``out``.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if checkpoint.is_dir():
        raise CheckpointError(f"{checkpoint}: is already a folder; export takes a .pt checkpoint of 'beenet train'")
    if out.exists() and not out.is_dir():
        raise BeenetError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise BeenetError(f"{out}: the folder is not empty; choose a new --out, or pass --overwrite")
    ckpt = load_checkpoint(checkpoint)
    checked_model_config(ckpt, checkpoint)  # as every loader does: sizes, shapes, no NaN / inf weights
    # clone(): tensors that share storage (tied weights) must be separate for safetensors.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in ckpt["model"].items()}
    blob = save(state, metadata={"format": "pt", "beenet_format": FORMAT,
                                 "format_version": str(FORMAT_VERSION)})
    with atomic_open(out / WEIGHTS_FILE, "wb", fsync=True) as fh:
        fh.write(blob)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "beenet_version": __version__,
        "trained_with_beenet": ckpt.get("beenet_version"),
        "config": ckpt["config"],
        "labels": {"categories": list(CATEGORIES), "vad": list(VAD_NAMES)},
        "epoch": ckpt.get("epoch"),
        "metrics": to_builtins(ckpt.get("metrics") or {}, finite_only=True),
        "best": to_builtins(ckpt.get("best") or {}, finite_only=True),
        "pretrained_weights": ckpt.get("pretrained_weights") or {},
        "trained_on": trained_on(ckpt),
        "training_data": _training_data(ckpt, training_data),
        "checkpoint_file": checkpoint.name,
        "checkpoint_sha256": file_sha256(checkpoint),
        "weights_sha256": file_sha256(out / WEIGHTS_FILE),
    }
    write_json(out / CONFIG_FILE, to_builtins(meta, finite_only=True))
    write_text(out / CARD_FILE, model_card(meta))
    log.info("exported %s -> %s (%s, %s, %s)", checkpoint, out, *FOLDER_FILES)
    return out


def _training_data(ckpt: dict[str, Any], described: str | None) -> dict[str, Any]:
    """What is known of the training data: the user's description, the fingerprint if the
    checkpoint records one, the protocol and split seed, and the context source."""
    cfg = ckpt.get("config") or {}
    run, ctx = cfg.get("run") or {}, cfg.get("context") or {}
    fp = (ckpt.get("trained_on") or {}).get("fingerprint") if isinstance(ckpt.get("trained_on"), dict) else None
    return {
        "description": described,
        "fingerprint": fp,
        "protocol": run.get("protocol"),
        "split_seed": run.get("split_seed"),
        "context_source": ctx.get("source"),
    }


def _trained_on_line(rec: Any) -> str:
    """The model card's one line on what the model learned from."""
    kind = rec.get("kind") if isinstance(rec, dict) else None
    where = f" (`{rec.get('data')}`)" if isinstance(rec, dict) and rec.get("data") else ""
    if kind == "synthetic":
        return (f"**synthetic stick figures** made by `beenet synth`{where}. Its scores on real video are "
                "not meaningful: it shows that the pipeline runs, nothing about real people")
    if kind == "bold":
        return f"a BoLD-layout dataset of real video{where}"
    if kind == "imported":
        return f"the user's own labelled videos, imported with `beenet import`{where}"
    return "not recorded (a checkpoint written before beenet recorded its training data)"


def model_card(meta: dict[str, Any]) -> str:
    """The README.md of an exported folder: what the model is, what it was trained on, how well it
    scored on validation (with chance levels), and how to load it."""
    try:
        name = describe_model(ModelConfig.from_dict(dict(meta["config"]["model"])))
    except Exception:  # the card must not fail on a config this beenet cannot describe
        name = "beenet model"
    lines = _card_head(meta, name) + _card_validation(meta) + _card_provenance(meta) + _card_usage()
    return "\n".join(lines)


def _card_head(meta: dict[str, Any], name: str) -> list[str]:
    """The card's front matter, title, outputs and training data."""
    cfg = meta["config"]
    data, run = cfg.get("data") or {}, cfg.get("run") or {}
    td = meta.get("training_data") or {}
    return [
        "---",
        "library_name: beenet",
        "tags: [beenet, bodily-expression, emotion-recognition, video, BoLD]",
        "---",
        "",
        f"# {name}",
        "",
        "Bodily expression of emotion in video (BEE-NET and beyond), exported by "
        f"`beenet export pretrained` (beenet {meta.get('beenet_version')}; trained with beenet "
        f"{meta.get('trained_with_beenet') or 'unknown'}). Outputs: the 26 BoLD categories (scores in "
        "[0, 1]) and valence / arousal / dominance on BoLD's 1-10 scale.",
        "",
        "## Training data",
        "",
        f"- Trained on: {_trained_on_line(meta.get('trained_on'))}",
        f"- Data: {td.get('description') or 'not recorded in the checkpoint (pass --training-data to say)'}",
        f"- Data fingerprint: {td.get('fingerprint') or 'not recorded in the checkpoint'}",
        f"- Protocol: {td.get('protocol')} (split seed {td.get('split_seed')})",
        f"- Context source: {td.get('context_source')}",
        # The frame size is the model's (model.image_size owns it; older configs also wrote it in data).
        f"- Sampling: {data.get('sampling')}, {data.get('num_frames')} frame(s) at "
        f"{(cfg.get('model') or {}).get('image_size')} px",
        f"- Seed: {run.get('seed')}; epochs configured: {(cfg.get('optim') or {}).get('epochs')}",
        "",
    ]


def _card_validation(meta: dict[str, Any]) -> list[str]:
    """The validation scores the checkpoint records, beside chance, or that it records none."""
    td = meta.get("training_data") or {}
    metrics = meta.get("metrics") or {}
    val = metrics.get("val") if isinstance(metrics, dict) else None
    epoch = meta.get("epoch")
    lines = ["## Validation metrics", ""]
    if isinstance(val, dict) and any(val.get(k) is not None for k in ("mAP", "mRA", "mR2", "ERS")):
        lines += [
            f"Validation split of the {td.get('protocol')} protocol, n = {val.get('n')}, after epoch "
            f"{epoch + 1 if isinstance(epoch, int) else '?'}:",
            "",
            f"- model:  {format_headline(val)}",
            f"- chance: {format_headline(val.get('chance'))}",
            "",
            "Chance is a predictor that knows nothing: AP at each category's positive rate, ROC AUC 0.5, "
            "R2 0. A synthetic-data model's numbers say nothing about BoLD.",
        ]
    else:
        lines.append("Not validated (the checkpoint records no validation scores).")
    return lines


def _card_provenance(meta: dict[str, Any]) -> list[str]:
    """The source checkpoint, the weights file and the published weights the model started from."""
    pw = meta.get("pretrained_weights") or {}
    lines = ["", "## Provenance", "",
             f"- Source checkpoint: `{meta.get('checkpoint_file')}`, sha256 `{meta.get('checkpoint_sha256')}`",
             f"- `{WEIGHTS_FILE}` sha256 `{meta.get('weights_sha256')}`"]
    for part, rec in pw.items():
        if part == "init":  # beenet train --init: a file of the user's, named without its folder
            lines.append(f"- Fine-tuned from `{Path(str(rec.get('file'))).name}` (init, epoch {rec.get('epoch')}), "
                         f"sha256 `{rec.get('sha256')}`")
            continue
        lines.append(f"- Started from `{rec.get('file')}` ({part}), sha256 `{rec.get('sha256')}`, {rec.get('url')}")
    if not pw:
        lines.append("- Started from: random initialisation (no published weights recorded)")
    return lines


def _card_usage() -> list[str]:
    """The folder's files and how to load it."""
    return [
        "",
        "## Files",
        "",
        f"- `{WEIGHTS_FILE}`: the weights (safetensors: tensors only, loading runs no code)",
        f"- `{CONFIG_FILE}`: format `{FORMAT}` v{FORMAT_VERSION}, the full run config, label names, metrics, provenance",
        f"- `{CARD_FILE}`: this card",
        "",
        "## How to load it",
        "",
        "```python",
        "from beenet import Predictor",
        'table = Predictor.from_pretrained("PATH_OR_USER/NAME").predict("talk.mp4")',
        "```",
        "",
        "```bash",
        "beenet predict talk.mp4 --checkpoint PATH_OR_USER/NAME --out preds",
        "beenet eval --checkpoint PATH_OR_USER/NAME --data BOLD_DIR",
        "```",
        "",
        "A Hub id (`user/name`) needs `pip install 'beenet[hub]'`; offline (`HF_HUB_OFFLINE=1`) it is "
        "read from the local Hugging Face cache.",
        "",
    ]
