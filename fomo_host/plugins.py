"""Finding, loading and asking plugins.

Plugins are modules named by entry points in the ``fomo_host`` group. Each is
loaded on its own: one that fails to import, or registers something invalid,
becomes one error line naming its distribution, version and the cause, and the
others still load. Environment variables steer loading:

- ``FOMO_STRICT_PLUGINS=1``: any plugin error (or name two plugins claim) stops start-up, with all of them in one line.
- ``FOMO_LOAD_PLUGINS=dist-a,dist-b``: load only these distributions.
- ``FOMO_DISABLE_PLUGINS=dist-c``: never load these distributions.
- ``FOMO_PLUGIN_MODULES=package.module,...``: also load these modules as plugins, installed or not as
  distributions (as ``PYTEST_PLUGINS`` does for pytest); the conformance suites name their toy components'
  module here for the processes a run starts.

A distribution named in either list that is not installed is an error naming the
installed ones (a misspelt name would otherwise silently load, or block, nothing).
A component name two plugins register is usable by neither until one is disabled,
whatever order they load in; their other components stay available.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Provider, Registry
from .run_loggers import PLUGIN_NAME as RUN_LOGGERS
from .run_loggers import RunLoggers

ENTRY_POINT_GROUP = "fomo_host"
STRICT_VARIABLE = "FOMO_STRICT_PLUGINS"
ALLOW_VARIABLE = "FOMO_LOAD_PLUGINS"
DENY_VARIABLE = "FOMO_DISABLE_PLUGINS"
REPLACED_HOOKS = {
    "logger_names": "loggers are registered components now: register each with register_loggers (see docs/loggers.md)",
    "logger_problems": "a logger's Params say what would stop it (LoggerParams.problems; see docs/loggers.md)",
}
"""Hooks earlier versions had -> what a plugin implementing one does instead."""
MODULES_VARIABLE = "FOMO_PLUGIN_MODULES"


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
    manager.register(RunLoggers(host.registry), name=RUN_LOGGERS)
    allowed, denied = _names_from(ALLOW_VARIABLE), _names_from(DENY_VARIABLE) or set()

    candidates: list[tuple[PluginRecord, Callable[[], Any]]] = []
    outside: set[str] = set()
    """The entry points' modules: packages whose source is checked for private host imports (objects given in
    ``extra`` are the caller's own)."""
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
            outside.add(entry_point.value)
    named = [name.strip() for name in os.environ.get(MODULES_VARIABLE, "").split(",") if name.strip()]
    for module_name in dict.fromkeys(named):
        candidates.append(
            (PluginRecord(module_name, module_name, "local", module_name), functools.partial(importlib.import_module, module_name))
        )
    for name, plugin in extra:
        module = getattr(plugin, "__name__", type(plugin).__name__)
        if module in named:  # already loaded through FOMO_PLUGIN_MODULES
            continue
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
        if record.module in outside:
            warn_about_private_imports(record)
            warn_about_process_variables(record)

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
        if name in REPLACED_HOOKS:
            parts.append(f"hook {name!r} no longer exists: {REPLACED_HOOKS[name]}")
            continue
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
                *,
                name: Any = None,
                factory: Any = None,
                params: Any = None,
                description: str | None = None,
                default: Any = False,
                budget_reference: Any = False,
                _kind: str = kind,
            ) -> None:
                host.registry.add(_kind, provider, name, factory, params, description, default, budget_reference)

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


# ----------------------------------------------------------------------------- the public surface

PUBLIC_MODULES = ("api", "testing")
"""What a plugin may import from the host besides ``fomo_host`` itself (``hookimpl``, the Python API)."""
_HOST_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+fomo_host(?P<from>(?:\.\w+)*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#]+)"
    r"|import[ \t]+(?P<imports>[^\n#]+))",
    re.MULTILINE,
)


class PrivateHostImportWarning(UserWarning):
    """A plugin imports a host module other than ``fomo_host.api`` and ``fomo_host.testing``: it may break on any release."""


@functools.cache
def _host_modules() -> frozenset[str]:
    package = Path(__file__).parent
    return frozenset(path.stem if path.is_file() else path.name for path in package.iterdir() if not path.name.startswith("_"))


def private_host_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a private ``fomo_host`` module in a plugin's source text."""
    found = []
    for match in _HOST_IMPORT.finditer(source):
        line = source.count("\n", 0, match.start()) + 1
        if match.group("imports") is not None:
            modules = [part.strip().split(" as ")[0].strip() for part in match.group("imports").split(",")]
            found += [(line, module) for module in modules if module.startswith("fomo_host.")]
            continue
        inner = match.group("from") or ""
        if inner:
            found.append((line, f"fomo_host{inner}"))
        else:  # "from fomo_host import engine" names a module; "from fomo_host import hookimpl" does not
            names = [part.strip().split(" as ")[0].strip() for part in match.group("names").strip("()").replace("\\", "").split(",")]
            found += [(line, f"fomo_host.{name}") for name in names if name in _host_modules()]
    return [(line, module) for line, module in found if module.split(".")[1] not in PUBLIC_MODULES]


_warned: set[tuple[str, str]] = set()
_scanned: set[tuple[str, str, str]] = set()


def _package_sources(record: PluginRecord) -> Iterator[tuple[Path, str]]:
    """(path, text) of every Python file of the package a plugin's entry point names (read as text, not imported)."""
    root = record.module.split(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(root)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    folders = list(spec.submodule_search_locations or [])
    files = [path for folder in folders for path in sorted(Path(folder).rglob("*.py"))] if folders else [Path(spec.origin or "")]
    for path in files:
        try:
            yield path, path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


def warn_about_private_imports(record: PluginRecord) -> None:
    """Warn, once per process and module, where a plugin's package imports a private host module.

    The host's own plugins import ``fomo_host.api`` only (a test holds them to it), so only outside plugins are warned.
    The package's source is read as text, not imported: a module the plugin loads lazily is checked too, cheaply.
    """
    key = (record.distribution, record.version, record.module)
    if key in _scanned:  # once per process: a package's source does not change under a running host
        return
    _scanned.add(key)
    for path, source in _package_sources(record):
        if "fomo_host" not in source:
            continue
        for line, module in private_host_imports(source):
            if (record.distribution, module) in _warned:
                continue
            _warned.add((record.distribution, module))
            warnings.warn(
                f"plugin {record.name!r} from {record.distribution} {record.version} imports {module} ({path.name}:{line}), "
                "a private module of fomo-host that may change in any release; import from fomo_host.api instead",
                PrivateHostImportWarning,
                stacklevel=2,
            )


# ----------------------------------------------------------------------------- the process a plugin runs in

PROCESS_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
"""What launchers (torchrun, accelerate) set; the host reads them, and hands plugins what they mean."""


class ProcessVariableWarning(UserWarning):
    """A plugin reads ``RANK``, ``LOCAL_RANK`` or ``WORLD_SIZE`` from the environment: wrong under launchers that do not
    set them, and the host already hands every hook and component its :class:`fomo_host.api.ProcessInfo`."""


def _is_environ(node: ast.expr) -> bool:
    """``os.environ``, or ``environ`` (``from os import environ``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _is_getenv(node: ast.expr) -> bool:
    """``os.getenv``, or ``getenv`` (``from os import getenv``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "getenv" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "getenv"


def _text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def process_variable_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable) of every read of ``RANK``, ``LOCAL_RANK`` or ``WORLD_SIZE`` from the environment in a plugin's
    source: ``os.environ[...]``, ``os.environ.get(...)``, ``os.getenv(...)`` (also through ``from os import ...``) and
    ``"RANK" in os.environ``. Setting one (a plugin that launches processes) is no read."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr):
            continue
        name = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            name = _text(node.slice)
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            reads = _is_getenv(function) or (isinstance(function, ast.Attribute) and function.attr == "get" and _is_environ(function.value))
            name = _text(node.args[0]) if reads else None
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
            name = _text(node.left) if _is_environ(node.comparators[0]) else None
        if name in PROCESS_VARIABLES:
            found.add((node.lineno, name))
    return sorted(found)


_warned_variables: set[tuple[str, str]] = set()
_scanned_for_variables: set[tuple[str, str, str]] = set()


def warn_about_process_variables(record: PluginRecord) -> None:
    """Warn, once per process and variable, where a plugin's package reads ``RANK``, ``LOCAL_RANK`` or ``WORLD_SIZE``
    from the environment instead of the process information the host hands it (checked, like private imports, for
    every plugin found through an entry point; the host's own plugins read none, which a test holds them to)."""
    key = (record.distribution, record.version, record.module)
    if key in _scanned_for_variables:
        return
    _scanned_for_variables.add(key)
    for path, source in _package_sources(record):
        if "environ" not in source and "getenv" not in source:
            continue
        for line, variable in process_variable_reads(source):
            if (record.distribution, variable) in _warned_variables:
                continue
            _warned_variables.add((record.distribution, variable))
            warnings.warn(
                f"plugin {record.name!r} from {record.distribution} {record.version} reads {variable} from the environment "
                f"({path.name}:{line}); use the process information the host hands over instead: a hook's or a component's "
                "`process` (fomo_host.api.ProcessInfo: rank, world_size, is_main) and the build context's device",
                ProcessVariableWarning,
                stacklevel=2,
            )
