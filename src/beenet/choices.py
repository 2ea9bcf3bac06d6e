"""Config checks with one owner per choice list and one message style.

Choice lists have one owner: the ``Literal`` type hint of the config field that takes them.
``choices(ModelConfig, "fusion")`` reads the valid values off the hint, so a CLI ``choices=``,
an ablation axis or an error message never keeps a copy that can drift. ``check_choices(obj,
section)`` validates every ``Literal`` field of a config dataclass with the one message style
used everywhere: ``section.name: 'value' is not one of 'a', 'b'``.

Old spellings stay readable: a config dataclass lists them in a ``RENAMED_CHOICES`` class
attribute, ``{field: {old: new}}``, and :func:`upgrade_choice` turns an old word into the new
one with a deprecation warning (a YAML file, a ``--set`` value or an old checkpoint keeps working).

Every section dataclass checks itself the same way: ``validate()`` (called from ``__post_init__``
and by ``training.config.validate``) runs :func:`check_choices` and the number checks below;
``training.config.validate`` also runs :func:`check_finite` on every section (no NaN or inf).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import numbers
import typing
from typing import Any, Literal

from beenet.errors import ConfigError

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def choices(cls: type, name: str) -> tuple[Any, ...]:
    """The values the ``Literal`` hint of field ``name`` of dataclass ``cls`` allows."""
    hint = _hints(cls).get(name)
    if hint is None:
        raise KeyError(f"{cls.__name__} has no field {name!r}")
    if typing.get_origin(hint) is not Literal:
        raise TypeError(f"{cls.__name__}.{name} is not a Literal field (its type is {hint!r})")
    return typing.get_args(hint)


def literal_fields(cls: type) -> dict[str, tuple[Any, ...]]:
    """``{field: its choices}`` for every ``Literal`` field of dataclass ``cls``."""
    hints = _hints(cls)
    return {
        f.name: typing.get_args(hints[f.name])
        for f in dataclasses.fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    }


def not_one_of(key: str, value: Any, valid: typing.Iterable[Any]) -> ConfigError:
    """The one message for a value outside its choices: ``key: 'v' is not one of 'a', 'b'``."""
    return ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, valid))}")


def check_choices(obj: Any, section: str) -> None:
    """Raise :func:`not_one_of` for the first ``Literal`` field of ``obj`` whose value is not allowed."""
    for name, valid in literal_fields(type(obj)).items():
        value = getattr(obj, name)
        if value not in valid:
            raise not_one_of(f"{section}.{name}", value, valid)


# ------------------------------------------------------------------------------ old spellings


def deprecated(key: str, old: Any, new: Any) -> None:
    """Log the one deprecation message for an old spelling ``old`` of ``key``, now ``new``."""
    log.warning("%s: %r is deprecated, write %r (the same choice); %r will stop working in a later version",
                key, old, new, old)


def upgrade_choice(cls: type, name: str, value: Any, key: str | None = None) -> Any:
    """``value`` of field ``name`` of ``cls``, an old spelling replaced by the current one (with a
    warning naming ``key`` and the new word); any other value unchanged."""
    renamed = getattr(cls, "RENAMED_CHOICES", {}).get(name, {})
    if isinstance(value, str) and value in renamed:
        new = renamed[value]
        deprecated(key or name, value, new)
        return new
    return value


def upgrade_choices(obj: Any, section: str) -> None:
    """Replace the old spellings in every field of ``obj`` that has some (see :func:`upgrade_choice`)."""
    for name in getattr(type(obj), "RENAMED_CHOICES", {}):
        value = getattr(obj, name)
        new = upgrade_choice(type(obj), name, value, f"{section}.{name}")
        if new is not value:
            setattr(obj, name, new)


# ------------------------------------------------------------------------------ numbers


def check_positive_ints(obj: Any, section: str, *names: str) -> None:
    """Each field in ``names`` must be an int >= 1 (a bool is not)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{section}.{name} must be a positive integer, got {value!r}")


def check_at_least(obj: Any, section: str, bound: float, *names: str, strict: bool = False) -> None:
    """Each field in ``names`` must be a number ``>= bound`` (``> bound`` when ``strict``); NaN is not."""
    op = ">" if strict else ">="
    for name in names:
        value = getattr(obj, name)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
            value > bound if strict else value >= bound
        )
        if not ok:
            raise ConfigError(f"{section}.{name} must be {op} {bound:g}, got {value!r}")


def check_finite(obj: Any, section: str, *names: str) -> None:
    """Each float in the fields ``names`` (every field when none is named; floats inside tuples
    and lists too) must be finite: NaN and infinity are refused, naming the key."""
    for name in names or tuple(f.name for f in dataclasses.fields(obj)):
        value = getattr(obj, name)
        items = value if isinstance(value, (tuple, list)) else (value,)
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{section}.{name} must be a finite number, got {value!r}")
