"""The constructor contract shared by strategies and their components (after scikit-learn's BaseEstimator).

Constructors only store their keyword arguments, under attributes of the same name; all work happens later. That
makes every object describable (`get_params`), comparable across runs (`fingerprint`) and rebuildable from YAML.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from .types import stable_hash


class Configurable:
    """Mixin: `get_params()` reads the constructor's keyword arguments back from same-named attributes."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def validate(self) -> None:
        """Check the parameters, raising ConfigError on a bad one. Called once, when the object is built (the
        registry does it, and `robustqa.runner.generate_records` for a strategy built by hand), so the methods
        that do the work never check them again. Default: nothing to check."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: class, registered name and parameters (nested components described too)."""
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": _jsonable(self.get_params()),
        }

    def fingerprint(self) -> str:
        return stable_hash(json.dumps(self.describe(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Configurable):
        return value.describe()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
