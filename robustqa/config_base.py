"""The one base of robustqa's configuration dataclasses (after TRL's config dataclasses).

Every field has a default and a help text (`option`); `from_dict` rejects unknown keys and values of the wrong
type with a ConfigError that names the source; `read_yaml` is the one YAML reader of config files.

    @dataclass
    class MyConfig(ConfigBase):
        budget: int = option(100, "QA pairs to plan.")
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from .errors import ConfigError

T = typing.TypeVar("T")


def option(default: Any, help: str) -> Any:
    """A dataclass field with its default and help text (a mutable default is copied for every instance)."""
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def read_yaml(path: str | Path, kind: str = "config") -> dict[str, Any]:
    """A YAML mapping from a config file (an empty file is an empty mapping). Every way the file can be unreadable
    (missing, a directory, not UTF-8, not YAML, an alias bomb or nesting past the bounds of
    `robustqa.io.bounded.load_yaml`) is a one-line ConfigError naming it."""
    import yaml

    from robustqa.io.bounded import YamlBoundsError, load_yaml
    from robustqa.io.outputs import require_regular_input

    path = Path(path)
    require_regular_input(path, ConfigError)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {kind} file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {kind} file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = load_yaml(text)
    except YamlBoundsError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {kind} must be a mapping of field: value")
    return data


class ConfigBase:
    """Loading and saving shared by the configuration dataclasses; subclasses are `@dataclass`es."""

    kind: typing.ClassVar[str] = "config"  # how error messages name this config and its files

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], source: str | None = None) -> T:
        return from_dict(cls, data, source or cls.kind)  # type: ignore[attr-defined]

    @classmethod
    def from_yaml(cls: type[T], path: str | Path) -> T:
        data = cls.loaded_from(read_yaml(path, cls.kind), Path(path))  # type: ignore[attr-defined]
        return cls.from_dict(data, source=str(path))  # type: ignore[attr-defined]

    @classmethod
    def loaded_from(cls, data: dict[str, Any], path: Path) -> dict[str, Any]:
        """Hook: adjust what a file gave before it is checked (an experiment records the file's folder)."""
        return data

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def help(cls) -> dict[str, str]:
        """Each field's help text, in field order."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build a config dataclass, rejecting unknown keys and values of the wrong type with a ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"{source}: {key} must be {_type_name(hints[key])}, got {type(value).__name__} {value!r}")
    return cls(**data)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    base = origin or hint
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, base)


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if args:
        return " or ".join(_type_name(a) for a in args)
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))
