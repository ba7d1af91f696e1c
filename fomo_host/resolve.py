"""A spec's components resolved once: each reference with its registry entry and validated params, built in one place.

Reading a spec ends here: every component the spec names is looked up (unknown
names are one line listing the available ones) and its ``params`` table is
validated against the component's own Params model. What comes out is typed
(:class:`SpecComponents`): the engine, the budget and the commands build
components from it, and never look params up by key path again.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    scheduler: ResolvedComponent
    merger: ResolvedComponent
    metrics: list[ResolvedComponent]

    def all(self) -> list[ResolvedComponent]:
        return [self.model, *self.datasets, self.ordering, self.method, self.scheduler, self.merger, *self.metrics]


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
        scheduler=resolve("scheduler", spec.scheduler, "scheduler"),
        merger=resolve("merger", spec.merger, "merger"),
        metrics=[resolve("metric", ref, f"evaluation.metrics.{i}") for i, ref in enumerate(spec.evaluation.metrics)],
    )
