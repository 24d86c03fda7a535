"""The plugin manager and the registries it fills.

The only route from the core to a plugin is the ``codecbench`` entry-point group
(``pm.load_setuptools_entrypoints``); the core imports no plugin by name. Environment variables:
``CODECBENCH_LOAD_PLUGINS`` (comma list of entry-point names to load; empty means none) and
``CODECBENCH_DISABLE_PLUGINS`` (comma list of names to block).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from codecbench import hookspecs
from codecbench.errors import DuplicateNameError, UnknownNameError

ENTRY_POINT_GROUP = "codecbench"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

T = TypeVar("T")


@dataclass
class Registry(Generic[T]):
    """Named objects of one kind, each remembered with the plugin that registered it."""

    kind: str
    items: dict[str, T] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)

    def add(self, obj: T, provider: str) -> None:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ValueError(
                f"Invalid {self.kind} name {name!r} from plugin {provider!r}: "
                f"expected lowercase letters, digits, '.', '_' or '-'"
            )
        if name in self.items:
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered by both {self.providers[name]!r} "
                f"and {provider!r}; disable one with CODECBENCH_DISABLE_PLUGINS"
            )
        self.items[name] = obj
        self.providers[name] = provider

    def get(self, name: str) -> T:
        try:
            return self.items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.items) from None

    def names(self) -> list[str]:
        return sorted(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items[n] for n in self.names())


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specs added and installed plugins loaded."""
    pm = pluggy.PluginManager("codecbench")
    pm.add_hookspecs(hookspecs)
    for blocked in _env_list("CODECBENCH_DISABLE_PLUGINS") or []:
        pm.set_blocked(blocked)
    if load_entry_points:
        only = _env_list("CODECBENCH_LOAD_PLUGINS")
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if only is not None and ep.name not in only:
                continue
            if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
                continue
            pm.register(ep.load(), name=ep.name)
            if ep.dist is not None:
                _distributions[ep.name] = (ep.dist.name, ep.dist.version)
    pm.check_pending()
    return pm


_pm: pluggy.PluginManager | None = None
_distributions: dict[str, tuple[str, str]] = {}


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _pm
    if _pm is None:
        _pm = make_plugin_manager()
    return _pm


_registries: dict[tuple[str, tuple[int, ...]], Registry[Any]] = {}


def _collect(kind: str, hook_name: str) -> Registry[Any]:
    # Cached per set of loaded plugins, so a codec's loaded model survives between look-ups.
    pm = get_plugin_manager()
    key = (hook_name, tuple(sorted(id(p) for p in pm.get_plugins())))
    if key in _registries:
        return _registries[key]
    registry: Registry[Any] = Registry(kind)
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        provider = pm.get_name(impl.plugin) or repr(impl.plugin)
        impl.function(register=lambda obj, _p=provider: registry.add(obj, _p))
    _registries[key] = registry
    return registry


def codecs() -> Registry[Any]:
    """All registered codecs by name."""
    return _collect("codec", "register_codecs")


def datasets() -> Registry[Any]:
    """All registered datasets by name."""
    return _collect("dataset", "register_datasets")


def metrics() -> Registry[Any]:
    """All registered metrics by name."""
    return _collect("metric", "register_metrics")


def plugin_info() -> list[dict[str, Any]]:
    """Name, distribution version and implemented hooks of every loaded plugin."""
    pm = get_plugin_manager()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda p: p[0]):
        if plugin is None:
            continue
        dist, version = _distributions.get(name, (None, None))
        rows.append(
            {
                "name": name,
                "distribution": dist,
                "version": version,
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
            }
        )
    return rows


@contextmanager
def registered_plugin(plugin: object, name: str) -> Iterator[object]:
    """Register ``plugin`` for the duration of a ``with`` block (used by tests)."""
    pm = get_plugin_manager()
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)
