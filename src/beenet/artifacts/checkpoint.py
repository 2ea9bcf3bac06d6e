"""Checkpoints: one plain dict that describes itself, written atomically, read with weights_only.

Format (design.md): ``format = "beenet-checkpoint"``, ``format_version``, ``beenet_version``,
``config`` (the resolved run config as a dict; the model's under ``config["model"]``), ``labels``
(``categories``, ``vad``), ``model`` (state dict), ``epoch``, ``metrics``, and for resuming
``optimizer``, ``scheduler``, ``rng`` (plus any extra keys the trainer adds, e.g. ``best``), and
``pretrained_weights`` (``{submodule: {file, url, sha256}}`` of the published weights files the
model started from; absent for a random init, or when given only a state dict: pass it in ``extra``),
and ``trained_on`` (what the model learned from: :func:`training_data_record`; a checkpoint without
it reads as :data:`UNKNOWN_DATA` through :func:`trained_on`).
Only tensors, numbers, strings, lists and dicts go in, so ``torch.load(weights_only=True)`` can
read it without running code from the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

# checkpoint_sha256 and the trained_on record are kept importable from here; their homes are
# torch-free (predicting from an exported model reads them without torch).
from beenet.artifacts.pretrained import checkpoint_sha256, read_pretrained, resolve_checkpoint  # noqa: F401
from beenet.artifacts.provenance import (  # noqa: F401
    DATA_KINDS,
    SYNTHETIC_WARNING,
    UNKNOWN_DATA,
    fine_tuned_from,
    trained_on,
)
from beenet.atomic import atomic_open, to_builtins
from beenet.data.bold import ANNOTATION_FILES, IMPORT_MANIFEST
from beenet.errors import CheckpointError, ConfigError
from beenet.labels import CATEGORIES, VAD_NAMES
from beenet.models import ModelConfig
from beenet.version import __version__
from beenet.weights import file_sha256, pretrained_weights, state_dict_mismatch

log = logging.getLogger(__name__)

FORMAT = "beenet-checkpoint"
FORMAT_VERSION = 1

def training_data_record(root: str | os.PathLike[str], protocol: str, split_seed: int | None = None,
                         instances: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """The ``trained_on`` record of a run on the BoLD-layout folder ``root``.

    ``kind``: ``"synthetic"`` when ``root`` holds the manifest ``beenet synth`` writes (or, for
    older synthetic datasets, its sidecar / README), ``"imported"`` when it holds the one
    ``beenet import`` writes (:data:`~beenet.data.bold.IMPORT_MANIFEST`), else ``"bold"``. ``fingerprint``: SHA-256 over
    the bytes of the annotation CSVs the run read (train.csv, val.csv), the protocol and split seed,
    and the (video, person_id) keys of the ``instances`` actually used per split (``{"train": [...],
    "val": [...]}``: this is the split, after unusable clips were left out). ``data``: the folder's
    name (never the full path: a record travels with shared models).
    """
    root = Path(root)
    h = hashlib.sha256()
    for split in ("train", "val"):
        name = ANNOTATION_FILES[split][0]
        path = root / "annotations" / name
        h.update(f"{name}\0".encode())
        h.update(file_sha256(path).encode() if path.is_file() else b"missing")
        h.update(b"\0")
    h.update(f"protocol={protocol}\0seed={split_seed}\0".encode())
    for split, insts in sorted((instances or {}).items()):
        keys = sorted({(str(i.video), int(i.person_id)) for i in insts})
        h.update(f"{split}:{len(keys)}\0".encode())
        for video, pid in keys:
            h.update(f"{video}\t{pid}\n".encode())
    from beenet.data.synth.write import synth_manifest  # lazy: PIL and the renderer, not for loading a checkpoint

    manifest = synth_manifest(root)
    record: dict[str, Any] = {
        "kind": "synthetic" if manifest is not None else "imported" if (root / IMPORT_MANIFEST).is_file() else "bold",
        "fingerprint": h.hexdigest(),
        "data": root.resolve().name or str(root),
        "protocol": protocol,
        "split_seed": split_seed,
    }
    if manifest is not None:
        record["generator_version"] = manifest.get("generator_version")
    return record


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: torch.nn.Module | dict[str, torch.Tensor],
    config: dict[str, Any],
    epoch: int,
    metrics: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
    scheduler: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    started_from: dict[str, Any] | None = None,
    trained_on: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: a temp file in the same directory, fsync, ``os.replace``.

    A crash mid-write leaves the previous file intact (never a half-written ``last.pt``).
    ``started_from`` is the ``pretrained_weights`` record to store; by default it is read off
    ``model`` (a resumed run, built without downloading, passes the one its first run recorded).
    ``trained_on`` is the training data record (:func:`training_data_record`); None stores none.
    """
    path = Path(path)
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "beenet_version": __version__,
        "config": config,
        "labels": {"categories": list(CATEGORIES), "vad": list(VAD_NAMES)},
        "model": {k: v.detach().cpu() for k, v in state.items()},
        "epoch": int(epoch),
        "metrics": to_builtins(metrics or {}),
    }
    if started_from is None:
        started_from = pretrained_weights(model) if isinstance(model, torch.nn.Module) else {}
    if started_from:  # the published weights files (and their sha256) the model started from
        ckpt["pretrained_weights"] = started_from
    if trained_on is not None:
        ckpt["trained_on"] = to_builtins(trained_on)
    if optimizer is not None:
        ckpt["optimizer"] = optimizer
    if scheduler is not None:
        ckpt["scheduler"] = scheduler
    if rng is not None:
        ckpt["rng"] = rng
    if extra:
        for k, v in extra.items():
            if k in ckpt:
                raise ValueError(f"extra checkpoint key {k!r} would overwrite a format key")
            ckpt[k] = v
    with _sigint_deferred(), atomic_open(path, "wb", fsync=True) as fh:
        torch.save(ckpt, fh)
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def saved_epochs(path: str | os.PathLike[str]) -> int | None:
    """How many epochs the checkpoint at ``path`` holds (its ``epoch`` + 1), read without loading
    the tensors (memory-mapped, ``weights_only``); None when there is no readable checkpoint."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(ckpt["epoch"]) + 1
    except Exception:  # missing, damaged or not a checkpoint: the caller falls back
        return None


class InterruptedAfterWrite(KeyboardInterrupt):
    """A Ctrl-C that arrived while a checkpoint was written, raised once the file is whole."""


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives during the block until it ends, then raise it.

    Inside ``torch.save`` an interrupt surfaces as a RuntimeError from its C++ writer (a
    traceback, exit 1); deferred, the checkpoint is written whole and the CLI exits 130.
    Only the main thread can set signal handlers: elsewhere the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        raise InterruptedAfterWrite


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a beenet checkpoint (``weights_only=True``: never runs code from the file).

    ``path`` may also be a folder written by ``beenet export pretrained`` (read with safetensors
    and json, no pickle) or a Hugging Face Hub id of one (:mod:`beenet.artifacts.pretrained`); the result then
    has the same keys a checkpoint's has (no optimizer state) plus ``weights_file``.
    """
    path = resolve_checkpoint(path)
    if path.is_dir():
        return _check_contents(read_pretrained(path), Path(path) / "config.json")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling arbitrary bytes can fail with any exception type
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: cannot be read as a beenet checkpoint ({first}); the file is corrupt, truncated "
            "or not a PyTorch file: re-copy it or retrain"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a beenet checkpoint (no format={FORMAT!r} key); beenet reads only the files "
            "written by 'beenet train' (best.pt, last.pt)"
        )
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version!r} is newer than this beenet understands "
            f"({FORMAT_VERSION}); upgrade beenet (this is {__version__})"
        )
    for key in ("config", "model", "labels"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no {key!r} entry; the file is damaged")
    return _check_contents(ckpt, path)


def _check_contents(ckpt: dict[str, Any], path: Path) -> dict[str, Any]:
    """The checks a checkpoint and a pretrained folder share: label order, a model config."""
    labels = ckpt["labels"]
    if list(labels.get("categories", [])) != list(CATEGORIES) or list(labels.get("vad", [])) != list(VAD_NAMES):
        raise CheckpointError(
            f"{path}: the checkpoint's label order differs from this beenet's (26 BoLD categories in CSV "
            "order, then valence/arousal/dominance); it cannot be scored with these labels"
        )
    if not isinstance(ckpt["config"], dict) or "model" not in ckpt["config"]:
        raise CheckpointError(f"{path}: checkpoint config has no 'model' section; the file is damaged")
    return ckpt


def model_config_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str] = "checkpoint") -> Any:
    try:
        return ModelConfig.from_dict(dict(ckpt["config"]["model"]))
    except ConfigError as exc:
        raise CheckpointError(
            f"{path}: the checkpoint's model config does not fit this beenet's ModelConfig ({exc}); "
            "it was written by another beenet version"
        ) from None


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike[str] = "checkpoint") -> None:
    """``model.load_state_dict(state)`` with an error that says which keys/shapes do not match."""
    check_state(state, model.state_dict(), path)
    model.load_state_dict(state)


def check_state(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """Refuse weights ``state`` that do not fit a model whose state dict is ``own`` (keys, shapes;
    ``own`` may live on the ``meta`` device) or that hold NaN / inf, naming the file ``path``."""
    parts = state_dict_mismatch(state, own, "checkpoint")
    if parts:
        raise CheckpointError(
            f"{path}: the weights do not match the model built from the config: {'; '.join(parts)}. "
            "Load a checkpoint with the config it was trained with"
        )
    broken = non_finite_tensors(state)
    if broken:
        raise CheckpointError(
            f"{path}: {len(broken)} weight tensor(s) hold NaN/inf, e.g. {', '.join(broken[:3])}; the training "
            "diverged or the file is damaged: use another checkpoint (an earlier best.pt / last.pt)"
        )


def non_finite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state`` that hold NaN or inf."""
    return [k for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def weights_source(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """The file that errors about the weights should name: a folder's ``model.safetensors``, or
    the checkpoint file itself."""
    return ckpt.get("weights_file") or path
