"""Registries of strategies and components, with plugins from the entry-point group `robustqa.strategies`.

Built-ins are registered through the same path as third-party plugins (after simonw/llm): the entry point names a
hook `register(registry)` that calls `registry.strategy(...)` / `registry.component(...)`. Built-ins' hook is
`robustqa.strategies:register_builtins`, loaded even when the distribution's metadata is absent (a source tree).

A third-party package adds, in its pyproject.toml:

    [project.entry-points."robustqa.strategies"]
    mine = "my_package.robustqa_plugin:register"

with `def register(registry): registry.strategy("mine", make_mine, help="one line")`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from .errors import ConfigError
from .typecheck import check_call

ENTRY_POINT_GROUP = "robustqa.strategies"
BUILTIN_HOOK = "robustqa.strategies:register_builtins"
COMPONENT_KINDS = ("selector", "question_writer", "answerer", "span_filter", "filter")


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    help: str
    source: str


class Registry:
    def __init__(self) -> None:
        self.strategies: dict[str, Entry] = {}
        self.components: dict[str, dict[str, Entry]] = {k: {} for k in COMPONENT_KINDS}
        self._loaded_hooks: set[str] = set()
        self._source = "robustqa"

    # -- registration -------------------------------------------------------------------------------------------
    def strategy(self, name: str, factory: Callable[..., Any], help: str = "", replace: bool = False) -> None:
        if name in self.strategies and not replace:
            raise ConfigError(f"strategy {name!r} is already registered (by {self.strategies[name].source})")
        self.strategies[name] = Entry(name, factory, help, self._source)

    def component(
        self, kind: str, name: str, factory: Callable[..., Any], help: str = "", replace: bool = False
    ) -> None:
        if kind not in self.components:
            raise ConfigError(f"unknown component kind {kind!r}; kinds: {', '.join(COMPONENT_KINDS)}")
        if name in self.components[kind] and not replace:
            raise ConfigError(f"{kind} {name!r} is already registered")
        self.components[kind][name] = Entry(name, factory, help, self._source)

    def unregister(self, name: str) -> None:
        self.strategies.pop(name, None)

    # -- plugins ------------------------------------------------------------------------------------------------
    def load_plugins(self) -> None:
        hooks = [(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]
        if BUILTIN_HOOK not in {value for _, value in hooks}:
            hooks.insert(0, ("builtins", BUILTIN_HOOK))
        for ep_name, value in hooks:
            if value in self._loaded_hooks:
                continue
            self._loaded_hooks.add(value)
            self._source = "robustqa" if value == BUILTIN_HOOK else f"plugin {ep_name} ({value})"
            try:
                _resolve(value)(self)
            except ConfigError:
                raise
            except Exception as exc:  # a broken plugin must not hide which one it is
                raise ConfigError(f"strategy plugin {ep_name!r} ({value}) failed to load: {exc}") from exc
            finally:
                self._source = "robustqa"

    # -- lookup -------------------------------------------------------------------------------------------------
    def available(self) -> dict[str, Entry]:
        self.load_plugins()
        return dict(sorted(self.strategies.items()))

    def make_strategy(self, name: str, **params: Any) -> Any:
        self.load_plugins()
        if name not in self.strategies:
            raise ConfigError(f"unknown strategy {name!r}; available: {', '.join(sorted(self.strategies))}")
        check_call(self.strategies[name].factory, params, f"strategy {name!r}")
        try:
            strategy = self.strategies[name].factory(**params)
        except TypeError as exc:
            raise ConfigError(f"strategy {name!r}: {exc}") from exc
        strategy.name = name
        strategy.validate()
        return strategy

    def make_component(self, kind: str, spec: dict[str, Any] | str) -> Any:
        self.load_plugins()
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"a {kind} must be a name or a mapping with 'name', got {spec!r}")
        params = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
        table = self.components.get(kind, {})
        if name not in table:
            raise ConfigError(f"unknown {kind} {name!r}; available: {', '.join(sorted(table)) or 'none'}")
        check_call(table[name].factory, params, f"{kind} {name!r}")
        try:
            component = table[name].factory(**params)
        except TypeError as exc:
            raise ConfigError(f"{kind} {name!r}: {exc}") from exc
        component.validate()
        return component


def _resolve(value: str) -> Callable[[Registry], None]:
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


REGISTRY = Registry()


def get_strategy(name: str, **params: Any) -> Any:
    """Build a registered strategy by name with keyword parameters (ConfigError if unknown)."""
    return REGISTRY.make_strategy(name, **params)


def available_strategies() -> dict[str, Entry]:
    return REGISTRY.available()
