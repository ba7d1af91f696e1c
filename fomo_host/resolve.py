"""A spec's components resolved once: each reference with its registry entry and validated params, built in one place.

Reading a spec ends here: every component the spec names is looked up (unknown
names are one line listing the available ones) and its ``params`` table is
validated against the component's own Params model. What comes out is typed
(:class:`SpecComponents`): the engine, the budget and the commands build
components from it, and never look params up by key path again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import FomoError, SpecError
from .registry import Component, Registry
from .spec import ComponentRef, RunSpec, format_validation_error, refuse_booleans_for_numbers, refuse_non_finite


@dataclass(frozen=True)
class ResolvedComponent:
    """One component the spec names: where (key path), the registered component, its validated params."""

    where: str
    ref: ComponentRef
    component: Component
    params: BaseModel

    @property
    def name(self) -> str:
        return self.ref.name

    def build(self, *context: Any) -> Any:
        """Call the component's factory: ``factory(params, context)`` or ``factory(params)`` (see components.py).

        A file the factory cannot read is a user error, one line naming the component.
        """
        try:
            return self.component.factory(self.params, *context)
        except FomoError:
            raise
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            raise FomoError(f"{self.component.kind} {self.name!r}: {exc}") from exc


def resolve_component(
    registry: Registry, kind: str, ref: ComponentRef, where: str, source: str = "", schema_only: bool = False
) -> ResolvedComponent:
    """Look a reference up and validate its params; errors are one line naming ``where`` (after ``source``, the spec file)."""
    prefix = f"{source}: " if source else ""
    component = registry.get(kind, ref.name, where=f"{prefix}{where}.name")
    refuse_booleans_for_numbers(component.params, ref.params, source or "spec", prefix=f"{where}.params")
    try:
        params = component.validate_params(ref.params, {"schema_only": schema_only})
    except ValidationError as exc:
        raise SpecError(f"{prefix}{format_validation_error(exc, prefix=f'{where}.params')}") from None
    refuse_non_finite(params, source or "spec", prefix=f"{where}.params")
    return ResolvedComponent(where, ref, component, params)


@dataclass(frozen=True)
class SpecComponents:
    """Every component of a spec, resolved."""

    model: ResolvedComponent
    datasets: list[ResolvedComponent]
    ordering: ResolvedComponent
    method: ResolvedComponent
    optimizer: ResolvedComponent
    scheduler: ResolvedComponent
    merger: ResolvedComponent
    metrics: list[ResolvedComponent]
    loggers: list[ResolvedComponent] = field(default_factory=list)
    """The loggers the spec turns on; they change no result, so :meth:`all` (what a record's providers name) leaves them out."""

    def all(self) -> list[ResolvedComponent]:
        """The components that determine the run's results."""
        return [self.model, *self.datasets, self.ordering, self.method, self.optimizer, self.scheduler, self.merger, *self.metrics]


def resolve_components(spec: RunSpec, registry: Registry, source: str = "spec", schema_only: bool = False) -> SpecComponents:
    """Every component the spec names, checked in the order the spec lists them (the first problem is reported)."""

    def resolve(kind: str, ref: ComponentRef, where: str) -> ResolvedComponent:
        return resolve_component(registry, kind, ref, where, source, schema_only)

    model = resolve("model", spec.model, "model")
    datasets = [resolve("dataset", ref, f"data.sources.{i}") for i, ref in enumerate(spec.data.sources)]
    return SpecComponents(
        model=model,
        datasets=datasets,
        ordering=resolve("ordering", spec.data.ordering, "data.ordering"),
        method=resolve("method", spec.method, "method"),
        optimizer=resolve("optimizer", spec.optimizer, "optimizer"),
        scheduler=resolve("scheduler", spec.scheduler, "scheduler"),
        merger=resolve("merger", spec.merger, "merger"),
        metrics=[resolve("metric", ref, f"evaluation.metrics.{i}") for i, ref in enumerate(spec.evaluation.metrics)],
        loggers=resolve_loggers(spec, registry, source, schema_only),
    )


def resolve_loggers(spec: RunSpec, registry: Registry, source: str = "spec", schema_only: bool = False) -> list[ResolvedComponent]:
    """The loggers ``run.loggers`` turns on, each looked up and its params validated; a logger listed twice is refused.

    An error names the logger as well as the key path: ``run.loggers.1.params.mode`` alone would not say it is W&B's.
    """
    resolved: list[ResolvedComponent] = []
    for index, ref in enumerate(spec.run.loggers):
        where = f"run.loggers.{index}"
        if ref.name in spec.run.logger_names()[:index]:
            raise SpecError(f"{source}: {where}.name: logger {ref.name!r} is listed twice; list each logger once")
        component = registry.get("logger", ref.name, where=f"{source}: {where}.name")
        try:
            resolved.append(resolve_component(registry, "logger", ref, where, source, schema_only))
        except SpecError as exc:
            raise SpecError(f"{exc} (logger {ref.name!r} of {component.provider})") from None
    return resolved
