"""Choice lists have one owner: the ``Literal`` type hint of the config field that takes them.

``choices(ModelConfig, "fusion")`` reads the valid values off the hint, so a CLI ``choices=``,
an ablation axis or an error message never keeps a copy that can drift. ``check_choices(obj,
section)`` validates every ``Literal`` field of a config dataclass with the one message style
used everywhere: ``section.name: 'value' is not one of 'a', 'b'``.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Literal

from beenet.errors import ConfigError


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
