"""The one coercion of configuration values: a string from the command line (``--set a.b=3``,
``--pose-option tiles=2``) or a YAML / JSON value, read as the type its field's hint declares
(bool, int, float, str, Literal, Optional, tuple / list of those), or a
:class:`~beenet.errors.ConfigError` naming the key and what it takes.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal

import yaml

from beenet.errors import ConfigError


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


def coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` (a string from the command line or a YAML value) as type ``tp``, or ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def bad(extra: str = "") -> ConfigError:
        return ConfigError(f"{key}: {value!r} is not a valid {_type_name(tp)}{extra}")

    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~"))):
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise bad()
    if origin is Literal:
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
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") or text.startswith("("):
                text = "[" + text[1:-1] + "]"
                try:
                    value = yaml.safe_load(text)
                except yaml.YAMLError as exc:
                    raise bad(f" ({exc})") from None
            else:
                value = [p.strip() for p in text.split(",") if p.strip()] if text else []
        if not isinstance(value, (list, tuple)):
            value = [value]
        inner = args[0] if args else str
        items = [coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad(" (use true or false)")
    if tp is int:
        if isinstance(value, bool):
            raise bad()
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
                    raise bad() from None
                if f.is_integer():
                    return int(f)
        raise bad()
    if tp is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, (int, float)):
            f = float(value)
        elif isinstance(value, str):
            try:
                f = float(value.strip())
            except ValueError:
                raise bad() from None
        else:
            raise bad()
        if not math.isfinite(f):
            raise ConfigError(f"{key}: {value!r} is not a finite number (NaN and infinity are refused)")
        return f
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad()
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"{key} is a section; set one of its keys: "
                          f"{', '.join(key + '.' + f.name for f in dataclasses.fields(tp))}")
    # Any other annotated type: accept values that already have it.
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad()
