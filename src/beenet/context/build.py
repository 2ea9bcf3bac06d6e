"""Choosing a context source by name and getting the context vectors of a set of clips.

Kinds: ``sidecar`` (the ``synthetic_context.json`` of ``beenet synth``, exact and free),
``places365`` (scene CNN; objects half zero), ``coco`` (object detector; places half zero) and
``experts`` (both, joined into one 445 vector). Experts are cached on disk per expert, so
``experts`` reuses what an earlier ``places365`` or ``coco`` run computed.

Options (keyword arguments of :func:`make_context_source` / :func:`load_context`):

- shared: ``device``, ``frames_per_clip``, ``seed`` (random init), ``pretrained`` (False =
  random init, no download), ``weights_dir`` (where downloaded weights are kept);
- Places365: ``places_arch``, ``places_weights``, ``places_image_size``;
- COCO: ``coco_model``, ``coco_weights``, ``coco_score_threshold``, ``coco_min_size``,
  ``coco_max_size``;
- sidecar: the keywords of ``SidecarContext`` (e.g. ``place_smoothing``); expert options are ignored.

For the single-expert kinds the prefix may be left out (``arch="resnet50"`` with ``places365``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from beenet.context.base import CombinedContext, ContextSource, join_context, split_context
from beenet.labels import CONTEXT_DIM
from beenet.context.cache import ContextCache
from beenet.errors import BeenetError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from beenet.data.bold import BoLD

#: Names accepted by :func:`make_context_source`.
CONTEXT_KINDS: tuple[str, ...] = ("sidecar", "places365", "coco", "experts")
#: Options every expert understands.
SHARED_OPTIONS: tuple[str, ...] = ("device", "frames_per_clip", "seed", "pretrained", "weights_dir")


def default_cache_dir() -> Path:
    """``$BEENET_CACHE`` when set, else ``~/.cache/beenet/context``."""
    env = os.environ.get("BEENET_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "beenet" / "context"


def _expert_kwargs(cls: type, prefix: str, options: dict[str, Any], bare: bool) -> tuple[dict[str, Any], set[str]]:
    """The constructor keywords of ``cls`` found in ``options``, and the option names used."""
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "cache_dir"}
    kwargs: dict[str, Any] = {}
    used: set[str] = set()
    for key, value in options.items():
        name = None
        if key.startswith(prefix) and key[len(prefix):] in params:
            name = key[len(prefix):]
        elif key in ("device", "frames_per_clip", "seed") or (bare and key in params):
            name = key
        if name is not None:
            kwargs[name] = value
            used.add(key)
    if options.get("weights_dir") is not None:
        kwargs["cache_dir"] = options["weights_dir"]
    used.add("weights_dir")
    pretrained = options.get("pretrained")
    used.add("pretrained")
    if pretrained is not None and not pretrained:
        if kwargs.get("weights") is not None:
            raise ConfigError(f"context options: pretrained=False conflicts with "
                              f"{prefix}weights={kwargs['weights']!r}; give one of them")
        kwargs["weights"] = None
    return kwargs, used


def _check_used(kind: str, options: dict[str, Any], used: set[str], ignore: tuple[str, ...] = ()) -> None:
    """Raise on options nobody used; those starting with an ``ignore`` prefix (the other expert's,
    so that one config serves every kind) are let through."""
    unknown = sorted(k for k in set(options) - used if not (ignore and k.startswith(ignore)))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for context source {kind!r}; "
                          f"see 'beenet.context.build' for the options of each source")


def make_context_source(kind: str, root: str | Path | None = None, **options: Any) -> ContextSource:
    """The context source called ``kind`` (see :data:`CONTEXT_KINDS`); ``root`` is the dataset
    directory (needed by ``sidecar`` only)."""
    if kind == "sidecar":
        if root is None:
            raise ConfigError("context source 'sidecar' needs the dataset root (the folder holding "
                              "synthetic_context.json)")
        from beenet.context.sidecar import SidecarContext

        own = set(inspect.signature(SidecarContext.__init__).parameters) - {"self", "root"}
        kwargs = {k: v for k, v in options.items() if k in own}
        # Expert options mean nothing to the sidecar; tolerate them so one config serves every kind.
        _check_used(kind, options, set(SHARED_OPTIONS) | set(kwargs), ignore=("places_", "coco_"))
        return SidecarContext(root, **kwargs)
    if kind == "places365":
        from beenet.context.places365 import Places365Expert

        kwargs, used = _expert_kwargs(Places365Expert, "places_", options, bare=True)
        _check_used(kind, options, used, ignore=("coco_",))
        return Places365Expert(**kwargs)
    if kind == "coco":
        from beenet.context.coco import CocoDetectorExpert

        kwargs, used = _expert_kwargs(CocoDetectorExpert, "coco_", options, bare=True)
        _check_used(kind, options, used, ignore=("places_",))
        return CocoDetectorExpert(**kwargs)
    if kind == "experts":
        from beenet.context.coco import CocoDetectorExpert
        from beenet.context.places365 import Places365Expert

        p_kwargs, p_used = _expert_kwargs(Places365Expert, "places_", options, bare=False)
        c_kwargs, c_used = _expert_kwargs(CocoDetectorExpert, "coco_", options, bare=False)
        _check_used(kind, options, p_used | c_used)
        return CombinedContext(Places365Expert(**p_kwargs), CocoDetectorExpert(**c_kwargs))
    raise ConfigError(f"unknown context source {kind!r}; choose one of {', '.join(CONTEXT_KINDS)}")


def load_context(
    bold: "BoLD",
    videos: Iterable[str],
    kind: str,
    cache_dir: str | Path | None = None,
    *,
    save_every: int = 50,
    **options: Any,
) -> dict[str, np.ndarray]:
    """``{video: float32[445]}`` for every clip of ``videos`` from the context source ``kind``.

    The sidecar is read directly; experts go through :class:`ContextCache` in ``cache_dir``
    (default :func:`default_cache_dir`), one cache file per expert.
    """
    wanted = list(dict.fromkeys(str(v) for v in videos))
    source = make_context_source(kind, getattr(bold, "root", None), **options)
    if kind == "sidecar":
        out = {v: np.asarray(source.label_clip(bold, v), dtype=np.float32) for v in wanted}
        for v, vec in out.items():
            if vec.shape != (CONTEXT_DIM,):
                raise BeenetError(f"sidecar context of clip {v} has shape {vec.shape}, expected ({CONTEXT_DIM},)")
        return out
    cache = ContextCache(cache_dir if cache_dir is not None else default_cache_dir(), save_every=save_every)
    if isinstance(source, CombinedContext):
        places = cache.get_or_compute(source.places, bold, wanted)
        objects = cache.get_or_compute(source.objects, bold, wanted)
        return {v: join_context(split_context(places[v])[0], split_context(objects[v])[1]) for v in wanted}
    return cache.get_or_compute(source, bold, wanted)
