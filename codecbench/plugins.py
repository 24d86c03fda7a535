"""The plugin manager and the registries it fills.

The only route from the core to a plugin is the ``codecbench`` entry-point group
(``pm.load_setuptools_entrypoints``); the core imports no plugin by name. Environment variables:
``CODECBENCH_LOAD_PLUGINS`` (comma list of entry-point names to load; empty means none) and
``CODECBENCH_DISABLE_PLUGINS`` (comma list of names to block).

A plugin that fails to load (its module does not import, or its hooks do not match the specs) is
left out and remembered in :func:`load_errors`, so one broken plugin does not break every command;
the CLI names it and how to disable it.
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


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin left out because it failed to load."""

    name: str
    distribution: str | None
    error: str

    def message(self) -> str:
        """One line: which plugin, why, and how to stop loading it."""
        source = f" (from {self.distribution})" if self.distribution else ""
        return (f"plugin {self.name!r}{source} failed to load and is skipped: {self.error}. "
                f"Disable it with CODECBENCH_DISABLE_PLUGINS={self.name}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specs added and installed plugins loaded.

    Plugins that fail to import or to register are left out and listed by :func:`load_errors`.
    """
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
            dist = (ep.dist.name, ep.dist.version) if ep.dist is not None else None
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # an import error, a hook that does not match its spec, ...
                _load_errors[ep.name] = PluginLoadError(ep.name, dist and f"{dist[0]} {dist[1]}",
                                                        _describe(exc))
                continue
            _entry_points.add(ep.name)
            if dist is not None:
                _distributions[ep.name] = dist
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:  # a hook implementation matching no spec
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            pm.unregister(exc.plugin)
            _entry_points.discard(name)
            dist = _distributions.pop(name, None)
            _load_errors[name] = PluginLoadError(name, dist and f"{dist[0]} {dist[1]}", str(exc))
    return pm


_pm: pluggy.PluginManager | None = None
_distributions: dict[str, tuple[str, str]] = {}
_entry_points: set[str] = set()  # names of the plugins loaded from entry points
_load_errors: dict[str, PluginLoadError] = {}


def from_entry_point(name: str) -> bool:
    """Whether the plugin called ``name`` was loaded from an installed entry point (which every
    process, a worker included, loads itself), not registered at run time."""
    return name in _entry_points


def load_errors() -> list[PluginLoadError]:
    """The plugins this process left out because they failed to load."""
    return [_load_errors[name] for name in sorted(_load_errors)]


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _pm
    if _pm is None:
        _pm = make_plugin_manager()
    return _pm


_registries: dict[tuple[str, tuple[int, ...]], tuple[list[object], Registry[Any]]] = {}


def _collect(kind: str, hook_name: str) -> Registry[Any]:
    # Cached per set of loaded plugins, so a codec's loaded model survives between look-ups. The
    # entry keeps the plugins alive: an id is not reused (by a later plugin) while it is a key.
    pm = get_plugin_manager()
    loaded = list(pm.get_plugins())
    key = (hook_name, tuple(sorted(id(p) for p in loaded)))
    if key in _registries:
        return _registries[key][1]
    registry: Registry[Any] = Registry(kind)
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        provider = pm.get_name(impl.plugin) or repr(impl.plugin)
        impl.function(register=lambda obj, _p=provider: registry.add(obj, _p))
    _registries[key] = (loaded, registry)
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
