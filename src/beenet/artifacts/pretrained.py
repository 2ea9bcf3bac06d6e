"""Weights others can load: a pretrained folder (safetensors + JSON + model card) and Hub ids.

``beenet export pretrained --checkpoint RUN/best.pt --out DIR`` writes::

    DIR/
      model.safetensors   the model's state dict: tensors only (no pickle, no code)
      config.json         format name/version, beenet version, the full run config, label names,
                          epoch, metrics, the published weights the model started from
                          (``pretrained_weights``), the source checkpoint's sha256 and the
                          sha256 of model.safetensors, and ``trained_on`` (what the model learned
                          from: synthetic / bold / unknown, with the data fingerprint)
      README.md           the model card (training data, protocol, val metrics with chance levels)

Everything that takes a checkpoint (``Predictor``, ``beenet predict/eval/export onnx``) also takes
such a folder, or a Hugging Face Hub id ``user/name`` (``user/name@revision``): the id is turned
into a local folder by ``huggingface_hub.snapshot_download`` (the ``hub`` extra), which uses the
local Hugging Face cache when offline (``HF_HUB_OFFLINE=1`` or no network). Reading a folder
never runs pickle: ``safetensors`` for the tensors, ``json`` for the rest.

:func:`resolve_checkpoint` (path or id -> local path) and :func:`read_pretrained` (folder -> a
dict shaped like a loaded checkpoint) are what ``artifacts/checkpoint.py`` calls; the writer is
:func:`beenet.artifacts.share.export_pretrained`. User documentation: docs/predict.md, section "Sharing a model".
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from beenet.errors import CheckpointError
from beenet.version import __version__
from beenet.model_files import sha256_of as file_sha256

log = logging.getLogger(__name__)

FORMAT = "beenet-pretrained"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
#: The files a folder holds; a Hub download fetches only these (never a pickle beside them).
FOLDER_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)
#: Files that would be pickles: named in the error when a folder has one but no safetensors.
_PICKLE_NAMES = ("pytorch_model.bin", "model.pt", "model.pth", "best.pt", "last.pt")

#: ``user/name`` or ``user/name@revision`` (the Hub's repo id rules, loosely).
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


# --------------------------------------------------------------------------- path or Hub id


def hub_id(text: str | os.PathLike[str]) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` if ``text`` has the form of a Hub id, else None."""
    m = _HUB_ID.match(str(text))
    if m is None or m["repo"].endswith((".pt", ".pth", ".onnx")):
        return None
    return m["repo"], m["rev"]


def resolve_checkpoint(path_or_id: str | os.PathLike[str], revision: str | None = None) -> Path:
    """A local checkpoint file or folder as it is; else a Hub id, downloaded (or found in the local
    Hugging Face cache) as a folder. Raises :class:`CheckpointError` when it is neither.

    A text is a Hub id only when it has the ``user/name`` form and neither it nor its first
    component exists here: ``run_base/best`` beside a folder ``run_base/`` is a mistyped local path
    (the error names the files meant), never sent to the Hub."""
    path = Path(path_or_id)
    if path.exists():
        return path
    parsed = hub_id(path_or_id)
    if parsed is None or Path(path.parts[0]).exists():
        raise CheckpointError(f"{path}: no such checkpoint file or folder{_local_hint(path)}")
    repo, rev = parsed
    return _snapshot(str(path_or_id), repo, revision or rev)


def _local_hint(path: Path) -> str:
    """What a missing local ``path`` probably meant: the entries of its deepest existing folder
    whose names start like the first missing part (``run_base/best`` -> ``run_base/best.pt``)."""
    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    rest = path.parts[len(parent.parts):]
    if not parent.is_dir() or not rest:
        return ""
    missing = rest[0].lower()
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in parent.iterdir())
    except OSError:
        return ""
    like = [n for n in names if n.lower().startswith(missing) or missing.startswith(Path(n.rstrip("/")).stem.lower())]
    top = str(parent) in ("", ".") or parent == parent.parent  # no folder of the user's was named
    shown = [str(parent / n) + ("/" if n.endswith("/") else "") for n in (like or names)[:5]]
    more = ", ..." if len(like or names) > 5 else ""
    if like:
        return f" (did you mean {shown[0]}?)" if len(like) == 1 else f" (did you mean one of {', '.join(shown)}{more}?)"
    if top:
        return ""
    return f" ({parent}/ holds {', '.join(shown)}{more})" if shown else f" ({parent}/ is empty)"


def _hub_cache_dir() -> str | None:
    """The Hub cache the environment names now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _snapshot(text: str, repo: str, revision: str | None) -> Path:
    try:
        from huggingface_hub import snapshot_download  # lazy: the optional 'hub' extra, only for Hub ids
        from huggingface_hub.errors import (  # lazy: the optional 'hub' extra
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:
        raise CheckpointError(
            f"{text}: no such checkpoint file or folder here; to load it as a Hugging Face Hub id, "
            "install the hub extra: pip install 'beenet[hub]'"
        ) from None
    offline = _offline()
    cache = _hub_cache_dir()
    try:
        folder = snapshot_download(repo, revision=revision, cache_dir=cache, local_files_only=offline,
                                   allow_patterns=list(FOLDER_FILES))
    except RevisionNotFoundError:
        raise CheckpointError(f"{text}: the Hub model {repo} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise CheckpointError(
            f"{text}: no such file or folder here, and no model {repo} on the Hugging Face Hub (or it "
            "is private: log in with 'hf auth login')"
        ) from None
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached"
        raise CheckpointError(
            f"{text}: no such file or folder here, and the Hub model {repo} is not in the local Hugging "
            f"Face cache ({cache or 'the default cache'}) while {why}; download it once online, or "
            "copy the exported folder here and pass its path"
        ) from None
    except Exception as exc:  # the Hub client raises many kinds (HTTP, IO)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{text}: cannot fetch the Hub model {repo} ({type(exc).__name__}: {first})") from None
    log.info("Hub model %s -> %s", repo, folder)
    return Path(folder)


# --------------------------------------------------------------------------- reading a folder


def read_pretrained(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an exported folder into a dict shaped like a loaded checkpoint (``config``, ``labels``,
    ``model``, ``epoch``, ``metrics``, ``pretrained_weights``, ...) plus ``weights_file`` (the file
    errors about the tensors should name). JSON and safetensors only: nothing here unpickles."""
    folder = Path(folder)
    cfg_path, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{folder}: not a beenet pretrained folder (no {CONFIG_FILE}); write one with "
            "'beenet export pretrained --checkpoint best.pt --out DIR', or pass a .pt checkpoint"
        )
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not a beenet pretrained config (no format={FORMAT!r} key)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise CheckpointError(
            f"{cfg_path}: format_version {version!r}, this beenet ({__version__}) reads version "
            f"{FORMAT_VERSION}" + ("; upgrade beenet" if newer else "; re-export it with this beenet")
        )
    for key in ("config", "labels"):
        if not isinstance(meta.get(key), dict):
            raise CheckpointError(f"{cfg_path}: no {key!r} mapping; the file is damaged")
    if not weights.is_file():
        pickles = [n for n in _PICKLE_NAMES if (folder / n).exists()]
        hint = (f" ({', '.join(pickles)} is there, but beenet never loads a pickle from a folder)"
                if pickles else "")
        raise CheckpointError(f"{weights}: missing{hint}; re-export the folder with 'beenet export pretrained'")
    state = read_safetensors(weights)
    expected = meta.get("weights_sha256")
    if expected:
        actual = file_sha256(weights)
        if actual != expected:
            raise CheckpointError(
                f"{weights}: its sha256 {actual[:12]}... differs from the {expected[:12]}... that "
                f"{CONFIG_FILE} records; the file was changed or damaged: re-copy or re-export the folder"
            )
    out = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    out.update({"format": FORMAT, "format_version": FORMAT_VERSION, "model": state, "weights_file": str(weights)})
    return out


def read_safetensors(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file, or a :class:`CheckpointError` naming it."""
    from safetensors.torch import load_file  # lazy: loads torch; resolving a checkpoint's path does not need it

    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:  # SafetensorError, OSError, header errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({first}); it is damaged, truncated or another "
            "format (beenet never unpickles a folder's weights): re-copy or re-export the folder"
        ) from None


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file (the identity predict tables and ONNX metadata carry); for a
    pretrained folder (or Hub id), that of its ``model.safetensors``."""
    path = resolve_checkpoint(path)
    return file_sha256(path / WEIGHTS_FILE if path.is_dir() else path)
