"""Pose backend options (``beenet predict --pose-option KEY=VALUE``, ``Predictor(pose_options=...)``).

A backend declares its options as the keyword arguments of its class, with their type hints;
:func:`typed_options` reads each value given as that type with :func:`beenet.config_types.coerce`
(the one coercion of config values) and refuses a name the backend does not take. Ranges are the
backend's to check (:func:`check_options`). Every refusal is a :class:`PoseOptionError` naming
the option and the value.
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from beenet.config_types import coerce
from beenet.errors import BeenetError, ConfigError

#: What a value of each kind must be, for the message that refuses one.
_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


class PoseOptionError(BeenetError, ValueError):
    """A pose backend option that does not exist, or has a value of the wrong kind or range."""


def parse_pose_option(text: str) -> tuple[str, object]:
    """``--pose-option KEY=VALUE``: the value as a number, true/false, or else the text (the
    backend then reads it as the type it declares, :func:`typed_options`)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. hog_every=2")
    low = value.strip().lower()
    if low in ("true", "yes", "on", "false", "no", "off"):
        return key, low in ("true", "yes", "on")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def _kind_words(tp: Any) -> str:
    """What a value of type ``tp`` must be, in words (``int | None``: a whole number)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(kinds) == 1:
            return _kind_words(kinds[0])
        return " or ".join(_kind_words(a) for a in kinds)
    if typing.get_origin(tp) is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return _KIND_WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def coerce_option(name: str, value: Any, tp: Any) -> Any:
    """``value`` of pose option ``name`` read as type ``tp`` (:func:`beenet.config_types.coerce`:
    ``"no"`` is false, ``2.5`` is no whole number), or :class:`PoseOptionError` naming both."""
    try:
        return coerce(value, tp, f"pose option {name}")
    except ConfigError:
        raise PoseOptionError(f"pose option {name} must be {_kind_words(tp)}, got {value!r}") from None


def declared_options(backend: type) -> dict[str, Any]:
    """The options ``backend`` declares: the keyword arguments of its class, with their types."""
    hints = typing.get_type_hints(backend.__init__)
    params = inspect.signature(backend.__init__).parameters
    return {n: hints.get(n, Any) for n, p in params.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def typed_options(backend: type, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for the backend class ``backend`` (called ``name``), each read as the type it
    declares; a name it does not declare raises :class:`PoseOptionError`."""
    declared = declared_options(backend)
    out = {}
    for key, value in options.items():
        if key not in declared:
            raise PoseOptionError(f"pose backend {name!r} does not take the option {key!r}")
        out[key] = value if declared[key] is Any else coerce_option(key, value, declared[key])
    return out


def check_options(options: Iterable[tuple[str, Any, type, float | None, bool]]) -> dict[str, Any]:
    """``(name, value, kind, lowest allowed, whether the lowest itself is allowed)`` each: the
    values read as their kinds (all kinds first, so that a comparison never meets a string),
    then each checked against its lowest value; by name."""
    options = list(options)
    values = {name: coerce_option(name, value, kind) for name, value, kind, _low, _incl in options}
    for name, given, _kind, low, inclusive in options:
        value = values[name]
        if low is not None and (value < low if inclusive else value <= low):
            raise PoseOptionError(f"pose option {name} must be {'>=' if inclusive else '>'} {low}, got {given}")
    return values


@dataclass(frozen=True)
class MultiPoseOptions:
    """What the engine of the multi-person BlazePose backend (``--pose mediapipe``) runs with,
    checked and typed by the backend (:class:`~beenet.inference.pose.multi.MediaPipeMultiPose`
    describes each)."""

    num_poses: int
    min_detection_confidence: float
    min_presence_confidence: float
    min_tracking_confidence: float
    tiles: int
    tile_overlap: float
    merge_iou: float
    detector: str
    crop_margin: float
    follow: bool
    confirm_every: int
    threads: int
    person_every: int = 2
    follow_every: int = 1
    focus: bool = False
    person_threshold: float = 0.3
    person_weak: float = 0.3
    person_confirm: float = 0.1
    unposed: float = 0.5
    unposed_group: float = 0.2
    track_lite: float = 0.0
