"""Named components, each with a pydantic ``Params`` model and the distribution that provided it."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from .errors import PluginError, SpecError
from .hookspecs import REGISTRATION_HOOKS
from .params import LoggerParams, MergeOperatorParams, NoParams

KINDS: tuple[str, ...] = tuple(REGISTRATION_HOOKS)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
LAZY_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
"""``package.module:attribute``, as in entry points."""
PARAMS_BASE: dict[str, type[BaseModel]] = {"merge_operator": MergeOperatorParams, "logger": LoggerParams}
"""Kinds whose Params must derive from a host class (it declares what other components may ask of them)."""
LIST_DEFAULT_KINDS = ("metric",)
"""Kinds a spec lists (``evaluation.metrics``): their default is every component one plugin declares; other kinds take one."""
BUDGET_REFERENCE = "budget reference"
"""The role of the method whose peak memory is the denominator of every method's memory multiplier."""


@dataclass(frozen=True)
class Provider:
    """Where a component came from: the plugin name and its distribution."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}" if self.distribution != self.plugin else self.plugin


@dataclass(frozen=True)
class Component:
    """A registered component.

    ``target`` is what the plugin registered as the factory: the factory itself, or a lazy
    reference ``"package.module:attribute"`` that :attr:`factory` imports on first use.
    """

    kind: str
    name: str
    target: Callable[..., Any] | str
    params: type[BaseModel]
    provider: Provider
    description: str
    registry: Registry | None = field(default=None, repr=False, compare=False)
    """The registry holding it: the validation context of its Params (nested component choices look names up there)."""

    @cached_property
    def factory(self) -> Callable[..., Any]:
        """The factory, imported now if it was registered as a lazy reference.

        A reference that does not import (a dependency of the plugin missing) is a
        :class:`PluginError` naming the component and its distribution.
        """
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attribute = self.target.partition(":")
        where = f"{self.kind} {self.name!r} of {self.provider}"
        try:
            value: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                value = getattr(value, part)
        except ImportError as exc:
            raise PluginError(f"{where}: cannot import {self.target}: {type(exc).__name__}: {exc}") from exc
        except AttributeError as exc:
            raise PluginError(f"{where}: {self.target} does not exist: {exc}") from exc
        if not callable(value):
            raise PluginError(f"{where}: {self.target} is not callable")
        return value

    def validate_params(self, raw: dict[str, Any] | None, context: dict[str, Any] | None = None) -> BaseModel:
        """Validate a spec's ``params`` table (raises pydantic's ValidationError); ``context`` reaches the validators,
        with the registry under ``"registry"``."""
        return self.params.model_validate(raw or {}, context={"registry": self.registry, **(context or {})})


class Registry:
    """All components of all loaded plugins, by kind and name."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self._contested: dict[tuple[str, str], list[Component]] = {}
        """Names two or more plugins registered: usable by none of them until all but one are disabled."""
        self._declared: dict[str, list[Component]] = {}
        """Role ("default method", "budget reference", ...) -> the components declared for it, in registration order."""

    def add(
        self,
        kind: str,
        provider: Provider,
        name: Any,
        factory: Any,
        params: Any = None,
        description: str | None = None,
        default: bool = False,
        budget_reference: bool = False,
    ) -> Component:
        """Check and add one component; raises :class:`PluginError` naming the problem.

        ``default``: the component a spec gets when it names none of this kind; ``budget_reference`` (methods): the
        method whose peak memory divides every method's in the memory multiplier.
        """
        if kind not in self._components:
            raise PluginError(f"unknown kind of component {kind!r}; kinds: {', '.join(KINDS)}")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginError(
                f"{kind} name {name!r} is invalid: use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if isinstance(factory, str):
            if not LAZY_REFERENCE.match(factory):
                raise PluginError(f"{kind} {name!r}: factory {factory!r} is neither callable nor a reference 'package.module:attribute'")
            if not description:
                raise PluginError(
                    f"{kind} {name!r}: a factory given as a reference ({factory}) needs description=, "
                    "since the host does not import it to read its docstring"
                )
        elif not callable(factory):
            raise PluginError(f"{kind} {name!r}: factory {factory!r} is not callable")
        if params is None:
            params = LoggerParams if kind == "logger" else NoParams
        if not (inspect.isclass(params) and issubclass(params, BaseModel)):
            raise PluginError(f"{kind} {name!r}: params must be a pydantic BaseModel subclass, got {params!r}")
        base = PARAMS_BASE.get(kind)
        if base is not None and not issubclass(params, base):
            raise PluginError(f"{kind} {name!r}: params must derive from {base.__name__} (fomo_host.api), got {params.__name__}")
        claims = self._contested.get((kind, name), []) or [c for c in [self._components[kind].get(name)] if c is not None]
        if any(claim.provider == provider for claim in claims):
            raise PluginError(f"{kind} {name!r} is registered twice by the same plugin")
        text = description if description is not None else inspect.getdoc(factory) or ""
        component = Component(kind, name, factory, params, provider, text.strip().split("\n\n")[0].replace("\n", " "), self)
        if not isinstance(default, bool) or not isinstance(budget_reference, bool):
            raise PluginError(f"{kind} {name!r}: default= and budget_reference= take True or False")
        if budget_reference and kind != "method":
            raise PluginError(f"{kind} {name!r}: budget_reference= is for methods only")
        for role, declares, single in (
            (default_role(kind), default, kind not in LIST_DEFAULT_KINDS),
            (BUDGET_REFERENCE, budget_reference, True),
        ):
            mine = [c.name for c in self._declared.get(role, []) if c.provider == provider]
            if declares and single and mine:
                raise PluginError(f"{kind} {name!r}: the plugin already declares {mine[0]!r} the {role}; a plugin declares one")
        if default:
            self._declared.setdefault(default_role(kind), []).append(component)
        if budget_reference:
            self._declared.setdefault(BUDGET_REFERENCE, []).append(component)
        if claims:
            # whichever plugin loaded first, the name goes to neither: the outcome must not depend on load order
            self._contested[(kind, name)] = [*claims, component]
            self._components[kind].pop(name, None)
        else:
            self._components[kind][name] = component
        return component

    def conflicts(self) -> dict[tuple[str, str], list[Provider]]:
        """(kind, name) -> the providers that registered it, for every name two or more plugins claim."""
        return {
            key: sorted((claim.provider for claim in claims), key=lambda provider: (provider.distribution, provider.plugin))
            for key, claims in sorted(self._contested.items())
        }

    def conflict_messages(self) -> list[str]:
        """One line per name two or more plugins claim, and per role (a default, the budget reference) two declare."""
        return [
            f"{kind} {name!r} is registered by {' and by '.join(str(p) for p in providers)}; neither is usable until one is "
            f"chosen: {self.advice(providers, {(kind, name)})}"
            for (kind, name), providers in self.conflicts().items()
        ] + self.role_conflict_messages()

    def provided_by(self, provider: Provider) -> list[Component]:
        """Every component a plugin registered, the names it shares with another plugin included."""
        found = [c for by_name in self._components.values() for c in by_name.values() if c.provider == provider]
        found += [c for claims in self._contested.values() for c in claims if c.provider == provider]
        return sorted(found, key=lambda c: (KINDS.index(c.kind), c.name))

    def advice(self, providers: list[Provider], subject: set[tuple[str, str]] | None = None) -> str:
        """How to choose between claimants: each one's way to be disabled, and what else disabling it takes away."""
        options = []
        for provider in providers:
            others = [f"{c.kind} {c.name}" for c in self.provided_by(provider) if (c.kind, c.name) not in (subject or set())]
            shown = ", ".join(others[:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
            loses = f"also removes {shown}" if others else "removes nothing else"
            options.append(f"FOMO_DISABLE_PLUGINS={provider.distribution} ({loses})")
        return "disable all but one: " + " or ".join(options) + " (or uninstall one)"

    def remove_provider(self, plugin: str) -> None:
        """Drop every component of a plugin (used when its registration fails half-way)."""
        for by_name in self._components.values():
            for name in [n for n, c in by_name.items() if c.provider.plugin == plugin]:
                del by_name[name]
        for (kind, name), claims in list(self._contested.items()):
            remaining = [claim for claim in claims if claim.provider.plugin != plugin]
            if len(remaining) == 1:
                del self._contested[(kind, name)]
                self._components[kind][name] = remaining[0]
            else:
                self._contested[(kind, name)] = remaining
        for role, declared in list(self._declared.items()):
            self._declared[role] = [component for component in declared if component.provider.plugin != plugin]

    def get(self, kind: str, name: str, where: str = "") -> Component:
        """The component, or a :class:`SpecError` listing the available names."""
        by_name = self._components[kind]
        claims = sorted(self._contested.get((kind, name), []), key=lambda claim: (claim.provider.distribution, claim.provider.plugin))
        if claims:
            location = f" at {where}" if where else ""
            providers = [claim.provider for claim in claims]
            raise SpecError(
                f"{kind} {name!r}{location} is registered by {' and by '.join(str(p) for p in providers)}; "
                f"{self.advice(providers, {(kind, name)})}"
            )
        if name not in by_name:
            available = ", ".join(sorted(by_name)) or "none (is its plugin installed?)"
            location = f" at {where}" if where else ""
            raise SpecError(f"unknown {kind} {name!r}{location}; available: {available}")
        return by_name[name]

    def declared(self, role: str) -> list[str]:
        """The names declared for a role (``default_role(kind)`` or :data:`BUDGET_REFERENCE`), all from one plugin, in the
        order it registered them; empty when no plugin declares it. Two plugins declaring it is a :class:`SpecError`."""
        declared = self._declared.get(role, [])
        providers = sorted({component.provider for component in declared}, key=lambda p: (p.distribution, p.plugin))
        if len(providers) > 1:
            claims = " and by ".join(
                f"{provider} ({', '.join(c.name for c in declared if c.provider == provider)})" for provider in providers
            )
            subject = {(c.kind, c.name) for c in declared}
            raise SpecError(f"the {role} is declared by {claims}; {self.advice(providers, subject)}")
        return [component.name for component in declared]

    def role_conflict_messages(self) -> list[str]:
        messages = []
        for role in sorted(self._declared):
            try:
                self.declared(role)
            except SpecError as exc:
                messages.append(str(exc))
        return messages

    def names(self, kind: str) -> list[str]:
        return sorted(self._components[kind])

    def __iter__(self) -> Iterator[Component]:
        for kind in KINDS:
            yield from (self._components[kind][name] for name in sorted(self._components[kind]))


def default_role(kind: str) -> str:
    """The role of a kind's default: ``"default method"``, ``"default merge operator"``, ..."""
    return f"default {kind.replace('_', ' ')}"
