"""The one coercion of configuration values: a string from the command line (``--set a.b=3``,
``--pose-option tiles=2``) or a YAML / JSON value, read as the type its field's hint declares
(bool, int, float, str, Literal, Optional, tuple / list of those), or a
:class:`~beenet.errors.ConfigError` naming the key and what it takes; and :func:`from_dict`, the one
reading of a config dataclass from a dict (a checkpoint's, a YAML file's section).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import yaml

from beenet.choices import upgrade_choice
from beenet.errors import ConfigError

T = TypeVar("T")


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        return f"tuple of {_type_name(args[0])}" if args else "tuple"
    return getattr(tp, "__name__", str(tp))


def _bad(value: Any, tp: Any, key: str, extra: str = "") -> ConfigError:
    """The one message for a value its type does not take: ``key: 'v' is not a valid int``."""
    return ConfigError(f"{key}: {value!r} is not a valid {_type_name(tp)}{extra}")


def _coerce_union(value: Any, tp: Any, key: str) -> Any:
    """``X | None`` and other unions: ``none`` / ``null`` / ``~`` for None, else the first member
    that takes ``value``."""
    args = typing.get_args(tp)
    if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~"))):
        return None
    for a in args:
        if a is type(None):
            continue
        try:
            return coerce(value, a, key)
        except ConfigError:
            continue
    raise _bad(value, tp, key)


def _coerce_literal(value: Any, tp: Any, key: str) -> Any:
    """One of the choices of ``Literal[...]``, each read by its own type."""
    args = typing.get_args(tp)
    if isinstance(value, bool) and "off" in args and not any(isinstance(a, bool) for a in args):
        value = "on" if value else "off"  # YAML 1.1 reads a bare `off` as false
    for choice in args:
        try:
            v = coerce(value, type(choice), key)
        except ConfigError:
            continue
        if v == choice:
            return choice
    raise ConfigError(f"{key}: {value!r} is not one of {', '.join(repr(a) for a in args)}")


def _coerce_sequence(value: Any, tp: Any, key: str) -> Any:
    """A tuple or list: ``"8,16"``, ``"[8, 16]"`` or ``"(8, 16)"`` on the command line, a YAML list, or
    one value (a list of one); each item read by the item type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") or text.startswith("("):
            text = "[" + text[1:-1] + "]"
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise _bad(value, tp, key, f" ({exc})") from None
        else:
            value = [p.strip() for p in text.split(",") if p.strip()] if text else []
    if not isinstance(value, (list, tuple)):
        value = [value]
    inner = args[0] if args else str
    items = [coerce(v, inner, key) for v in value]
    return tuple(items) if origin is tuple else items


def _coerce_bool(value: Any, tp: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad(value, tp, key, " (use true or false)")


def _coerce_int(value: Any, tp: Any, key: str) -> int:
    """An int, a float without a fraction, or a string of either (``"3"``, ``"3.0"``); never a bool."""
    if isinstance(value, bool):
        raise _bad(value, tp, key)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                f = float(value)
            except ValueError:
                raise _bad(value, tp, key) from None
            if f.is_integer():
                return int(f)
    raise _bad(value, tp, key)


def _coerce_float(value: Any, tp: Any, key: str) -> float:
    """A finite float from a number or a string (never a bool; NaN and infinity are refused)."""
    if isinstance(value, bool):
        raise _bad(value, tp, key)
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            raise _bad(value, tp, key) from None
    else:
        raise _bad(value, tp, key)
    if not math.isfinite(f):
        raise ConfigError(f"{key}: {value!r} is not a finite number (NaN and infinity are refused)")
    return f


def _coerce_str(value: Any, tp: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _bad(value, tp, key)


#: The coercion of each plain type.
_PLAIN: dict[Any, Callable[[Any, Any, str], Any]] = {
    bool: _coerce_bool, int: _coerce_int, float: _coerce_float, str: _coerce_str,
}


def coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` (a string from the command line or a YAML value) as type ``tp``, or ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, key)
    if origin is Literal:
        return _coerce_literal(value, tp, key)
    if origin in (tuple, list):
        return _coerce_sequence(value, tp, key)
    plain = next((fn for t, fn in _PLAIN.items() if tp is t), None)
    if plain is not None:
        return plain(value, tp, key)
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"{key} is a section; set one of its keys: "
                          f"{', '.join(key + '.' + f.name for f in dataclasses.fields(tp))}")
    # Any other annotated type: accept values that already have it.
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _bad(value, tp, key)


# ------------------------------------------------------------------------------ dict -> dataclass


def from_dict(cls: type[T], d: Any, section: str, where: str | None = None, *, legacy: bool = True) -> T:
    """The config dataclass ``cls`` (section ``section`` of a run config) from the mapping ``d``.

    - ``d`` not a mapping, or a key that is not a field of ``cls``: ConfigError naming the key and
      listing the valid ones (a checkpoint of another version, or a typo in a config file).
    - An old spelling of a choice (``cls.RENAMED_CHOICES``) becomes the current one, with a warning.
    - Each value is read as its field's hint by :func:`coerce` (a list becomes a tuple, ``1`` a float
      where the hint says float). A value the hint does not take is left to the class's own checks
      (``__post_init__``), whose message names the field in its words; the coercion's message is
      raised when they let it pass.
    - A missing key predates its field: with ``legacy`` it takes its ``cls.LEGACY_VALUES`` value (the
      older behaviour) when it has one, its default otherwise.

    Every message starts with ``where: `` when ``where`` is given.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{prefix}{section} config must be a mapping of keys to values, got {type(d).__name__}")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in d if k not in names]
    if unknown:
        raise ConfigError(f"{prefix}unknown {section} config key {unknown[0]!r}; valid keys: {', '.join(names)}")
    old = getattr(cls, "LEGACY_VALUES", {}) if legacy else {}
    values = {**{k: v for k, v in old.items() if k not in d}, **d}
    hints = typing.get_type_hints(cls)
    kw: dict[str, Any] = {}
    refused: ConfigError | None = None
    for name, value in values.items():
        key = f"{section}.{name}"
        value = upgrade_choice(cls, name, value, key)
        try:
            kw[name] = coerce(value, hints[name], key)
        except ConfigError as exc:
            kw[name], refused = value, refused or exc
    try:
        obj = cls(**kw)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    except (TypeError, ValueError):
        if refused is None:
            raise
    if refused is not None:
        raise ConfigError(f"{prefix}{refused}") from None
    return obj
