"""Finding, loading and asking plugins.

Plugins are modules named by entry points in the ``fomo_host`` group. Each is
loaded on its own: one that fails to import, or registers something invalid,
becomes one error line naming its distribution, version and the cause, and the
others still load. Environment variables steer loading:

- ``FOMO_STRICT_PLUGINS=1``: any plugin error (or name two plugins claim) stops start-up, with all of them in one line.
- ``FOMO_LOAD_PLUGINS=dist-a,dist-b``: load only these distributions.
- ``FOMO_DISABLE_PLUGINS=dist-c``: never load these distributions.

A distribution named in either list that is not installed is an error naming the
installed ones (a misspelt name would otherwise silently load, or block, nothing).
A component name two plugins register is usable by neither until one is disabled,
whatever order they load in; their other components stay available.
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Provider, Registry

ENTRY_POINT_GROUP = "fomo_host"
STRICT_VARIABLE = "FOMO_STRICT_PLUGINS"
ALLOW_VARIABLE = "FOMO_LOAD_PLUGINS"
DENY_VARIABLE = "FOMO_DISABLE_PLUGINS"


@dataclass
class PluginRecord:
    """One loaded (or failed) plugin."""

    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None


@dataclass
class PluginHost:
    """The plugin manager, the registry it filled and what went wrong on the way."""

    manager: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def hook(self) -> Any:
        return self.manager.hook

    @property
    def problems(self) -> list[str]:
        """Broken plugins and component names two plugins claim: one line each."""
        return [*self.errors, *self.registry.conflict_messages()]


def _names_from(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None or not value.strip():
        return None
    return {_normalise(name) for name in value.split(",") if name.strip()}


def _normalise(distribution: str) -> str:
    return distribution.strip().lower().replace("_", "-")


def _strict() -> bool:
    return os.environ.get(STRICT_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))


def load_plugins(extra: Iterable[tuple[str, ModuleType | object]] = (), use_entry_points: bool = True) -> PluginHost:
    """Load every installed plugin (and ``extra`` ``(name, object)`` pairs), then collect their components."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    host = PluginHost(manager, Registry())
    allowed, denied = _names_from(ALLOW_VARIABLE), _names_from(DENY_VARIABLE) or set()

    candidates: list[tuple[PluginRecord, Callable[[], Any]]] = []
    if use_entry_points:
        entry_points = list(_entry_points())
        installed = sorted({_normalise(ep.dist.name) for ep in entry_points if ep.dist is not None})
        _check_listed(ALLOW_VARIABLE, allowed or set(), installed)
        _check_listed(DENY_VARIABLE, denied, installed)
        for entry_point in entry_points:
            distribution = entry_point.dist.name if entry_point.dist else "unknown"
            version = entry_point.dist.version if entry_point.dist else "?"
            key = _normalise(distribution)
            if key in denied or (allowed is not None and key not in allowed):
                continue
            candidates.append((PluginRecord(entry_point.name, distribution, version, entry_point.value), entry_point.load))
    for name, plugin in extra:
        module = getattr(plugin, "__name__", type(plugin).__name__)
        candidates.append((PluginRecord(name, name, "local", module), functools.partial(_given, plugin)))

    for record, load in candidates:
        host.plugins.append(record)
        plugin_name = f"{record.distribution}:{record.name}"
        try:
            manager.register(load(), name=plugin_name)
            manager.check_pending()
        except Exception as exc:  # a broken plugin must not take the others down
            typos = _unknown_hooks(manager, plugin_name)
            if manager.get_plugin(plugin_name) is not None:
                manager.unregister(name=plugin_name)
            _fail(host, record, typos or f"cannot load: {type(exc).__name__}: {exc}")
            continue
        _collect_components(host, record, plugin_name)

    problems = host.problems
    if problems and _strict():
        raise PluginError(
            f"{len(problems)} plugin problem{'s' if len(problems) > 1 else ''} ({STRICT_VARIABLE} is set): " + "; ".join(problems)
        )
    return host


def _check_listed(variable: str, listed: set[str], installed: list[str]) -> None:
    """Every distribution an allow or deny list names must be installed: a typo would change nothing, silently."""
    for name in sorted(listed):
        if name not in installed:
            close = difflib.get_close_matches(name, installed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PluginError(f"{variable}: no installed plugin distribution {name!r}{hint} installed: {', '.join(installed) or 'none'}")


def _unknown_hooks(manager: pluggy.PluginManager, plugin_name: str) -> str | None:
    """The plugin's hook implementations no hook spec declares (typos), with the closest real hook, or None."""
    plugin = manager.get_plugin(plugin_name)
    if plugin is None:
        return None
    known = [name for name in dir(hookspecs) if getattr(getattr(hookspecs, name), f"{hookspecs.PROJECT_NAME}_spec", None) is not None]
    unknown = [caller.name for caller in manager.get_hookcallers(plugin) or [] if caller.spec is None]
    if not unknown:
        return None
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"unknown hook {name!r}" + (f" (did you mean {close[0]!r}?)" if close else f"; hooks: {', '.join(sorted(known))}"))
    return "; ".join(parts)


def _given(plugin: object) -> object:
    return plugin


@functools.cache
def installed_plugins() -> PluginHost:
    """The installed plugins, loaded once per process, for Python use outside a command (the Python API, Params
    validated directly, plugins' tests); a command loads its own with :func:`load_plugins`."""
    return load_plugins()


def _fail(host: PluginHost, record: PluginRecord, cause: str) -> None:
    record.error = cause
    message = f"plugin {record.name!r} from {record.distribution} {record.version}: {cause}"
    host.errors.append(message)


def _collect_components(host: PluginHost, record: PluginRecord, plugin_name: str) -> None:
    """Call the plugin's registration hooks one by one so every component is stamped with its provider."""
    plugin = host.manager.get_plugin(plugin_name)
    provider = Provider(plugin=plugin_name, distribution=record.distribution, version=record.version)
    for kind, hook_name in hookspecs.REGISTRATION_HOOKS.items():
        caller = getattr(host.manager.hook, hook_name)
        for implementation in caller.get_hookimpls():
            if implementation.plugin is not plugin:
                continue

            # keyword-only, as the Register protocols of fomo_host.registration declare it
            def register(
                *, name: Any = None, factory: Any = None, params: Any = None, description: str | None = None, _kind: str = kind
            ) -> None:
                host.registry.add(_kind, provider, name, factory, params, description)

            arguments = {"register": register}
            try:
                implementation.function(**{k: arguments[k] for k in implementation.argnames if k in arguments})
            except Exception as exc:
                host.registry.remove_provider(plugin_name)
                host.manager.unregister(name=plugin_name)
                cause = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
                _fail(host, record, f"{hook_name} failed: {cause}")
                return


def warn_about_errors(host: PluginHost, stream: Any = None) -> None:
    """Print one line per broken plugin, and per name two plugins claim, to stderr."""
    for message in host.problems:
        print(f"warning: {message}", file=stream or sys.stderr)
