"""`KEY=VALUE` parameters from a command line (values read as YAML scalars), and `name@key=value,...` specs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import ConfigError


def parse_pair(text: str, what: str = "--param") -> tuple[str, Any]:
    """`KEY=VALUE` -> (key, YAML value); `what` names the option in the error."""
    import yaml

    from .io.bounded import YamlBoundsError, load_yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{what} needs KEY=VALUE, got {text!r}")
    try:
        return key.strip(), load_yaml(raw)
    except YamlBoundsError as exc:
        raise ConfigError(f"{what} {key.strip()}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {text!r}: value is not valid YAML ({exc.__class__.__name__})") from None


def parse_pairs(pairs: Iterable[str], what: str = "--param") -> dict[str, Any]:
    return dict(parse_pair(pair, what) for pair in pairs)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`name` or `name@key=value,key=value` -> (name, params)."""
    name, _, params = spec.partition("@")
    return name.strip(), parse_pairs(filter(None, params.split(",")), f"strategy spec {spec!r}:")
