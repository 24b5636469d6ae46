"""Values checked against the types that signatures and dataclasses declare, for one-line config errors.

Strategy factories and component constructors are plain Python callables with typed keyword defaults; their
parameters are checked from the signature itself (the annotation, else the default's type), so a parameter
added later is checked without registering anything.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigError

_UNKNOWN = object()


def type_ok(value: Any, hint: Any) -> bool:
    """Does `value` fit the annotation `hint`? Unknown or unresolvable annotations accept anything."""
    if hint is Any or hint is _UNKNOWN or isinstance(hint, (str, typing.TypeVar)):
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None) or hint is None:
        return value is None
    base = origin or hint
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is bool:
        return isinstance(value, bool)
    if base in (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        fixed_tuple = base is tuple and args and (len(args) != 2 or args[1] is not Ellipsis)
        inner = Any if fixed_tuple or not args else args[0]
        return all(type_ok(v, inner) for v in value)
    if base in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(type_ok(k, args[0]) and type_ok(v, args[1]) for k, v in value.items())
        return True
    if isinstance(base, type):
        return isinstance(value, base)
    return True


def type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if hint is type(None) or hint is None:
        return "null"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        if name in ("Sequence", "list", "tuple", "Iterable", "Collection"):
            return f"a list of {type_name(args[0])}" if args else "a list"
        if name in ("dict", "Mapping"):
            return "a mapping"
        return name
    return getattr(hint, "__name__", str(hint))


def describe_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def declared_parameters(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """({keyword parameter: type hint}, whether it takes **kwargs) of a function or a class's constructor."""
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}, True
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that does not resolve (a TYPE_CHECKING import): use the defaults' types
        hints = {}
    params: dict[str, Any] = {}
    var_kw = False
    for p in sig.parameters.values():
        if p.name == "self" or p.kind == p.VAR_POSITIONAL:
            continue
        if p.kind == p.VAR_KEYWORD:
            var_kw = True
            continue
        hint = hints.get(p.name, _UNKNOWN)
        if hint is _UNKNOWN and p.default is not p.empty and p.default is not None:
            hint = _hint_of_default(p.default)
        params[p.name] = hint
    return params, var_kw


def _hint_of_default(default: Any) -> Any:
    if isinstance(default, bool):
        return bool
    if isinstance(default, float):
        return float
    if isinstance(default, int):
        return int
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple)):
        return collections.abc.Sequence
    return _UNKNOWN


def check_call(factory: Callable[..., Any], params: Mapping[str, Any], where: str) -> None:
    """ConfigError naming `where` for an unknown keyword or a value of the wrong declared type."""
    declared, var_kw = declared_parameters(factory)
    unknown = sorted(set(params) - set(declared))
    if unknown and not var_kw:
        known = ", ".join(declared) or "none"
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}; known: {known}")
    for key, value in params.items():
        hint = declared.get(key, _UNKNOWN)
        if not type_ok(value, hint):
            raise ConfigError(f"{where}: {key} must be {type_name(hint)}, got {describe_value(value)}")
