"""A run's budget: each method's step cost (cached, or measured now), then steps per task from the spec's ``[budget]``."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import SpecError
from ...plugins import PluginHost
from ...registry import BUDGET_REFERENCE, Registry, default_role
from ...resolve import resolve_component
from ...spec import ComponentRef, RunSpec
from ..runtime import resolve_precision
from .arithmetic import Budget, derive_budget, fixed_steps
from .cache import cached_step_costs


def reference_method(registry: Registry) -> ComponentRef:
    """The method whose peak memory is the multiplier's denominator (full fine-tuning): the one an installed plugin
    declares with ``register(..., budget_reference=True)``; a budget in MAF needs one."""
    declared = registry.declared(BUDGET_REFERENCE)
    if not declared:
        raise SpecError(
            "budget.maf_per_task needs the memory multiplier's reference method (full fine-tuning), and no installed plugin "
            "declares one (register(..., budget_reference=True)); give budget.steps_per_task or samples_per_task instead"
        )
    return ComponentRef(name=declared[0])


def reference_optimizer(registry: Registry) -> ComponentRef:
    """The optimizer the reference method trains with: the default optimizer an installed plugin declares (the paper's
    AdamW), with its default params; a method trained with an optimizer that keeps less state (8-bit, GaLore's
    projections) then has a smaller multiplier, whatever the spec's optimizer."""
    declared = registry.declared(default_role("optimizer"))
    if not declared:
        raise SpecError(
            "budget.maf_per_task needs the memory multiplier's reference optimizer, and no installed plugin declares a "
            "default optimizer (register(..., default=True)); give budget.steps_per_task or samples_per_task instead"
        )
    return ComponentRef(name=declared[0])


def references_declared(registry: Registry) -> bool:
    """Whether installed plugins declare what a budget's figures are measured against: the reference method and optimizer."""
    return bool(registry.declared(BUDGET_REFERENCE)) and bool(registry.declared(default_role("optimizer")))


def resolve_budget(
    host: PluginHost, spec: RunSpec, cache_dir: Path, device: torch.device | None = None, method: ComponentRef | None = None
) -> Budget:
    """The budget of ``method`` (default: the spec's) under the spec: measured (or read from the cache), then derived.

    ``device`` is where the run would train; it decides the ``auto`` memory measure.
    """
    return resolve_budgets(host, spec, cache_dir, [method or spec.method], device)[0]


def resolve_budgets(
    host: PluginHost, spec: RunSpec, cache_dir: Path, methods: list[ComponentRef], device: torch.device | None = None
) -> list[Budget]:
    """:func:`resolve_budget` of several methods, measured on one build of the model."""
    device = device or training_device(spec)
    registry = host.registry
    model = resolve_component(registry, "model", spec.model, "model")
    optimizer = resolve_component(registry, "optimizer", spec.optimizer, "optimizer")
    reference_trainer = resolve_component(registry, "optimizer", reference_optimizer(registry), "optimizer")
    trained = [(resolve_component(registry, "method", ref, "method"), optimizer) for ref in methods]
    trained.append((resolve_component(registry, "method", reference_method(registry), "method"), reference_trainer))
    precision = resolve_precision(spec.run.precision, device)
    *costs, reference = cached_step_costs(spec, model, trained, memory_measure(spec, device), precision, cache_dir)
    return [derive_budget(spec, cost, reference) for cost in costs]


def steps_per_task(host: PluginHost, spec: RunSpec, cache_dir: Path) -> int:
    """Steps per task under the spec's budget: as given, or (a budget in MAF) from the method's measured cost."""
    fixed = fixed_steps(spec)
    return fixed[1] if fixed is not None else resolve_budget(host, spec, cache_dir).steps_per_task


def training_device(spec: RunSpec) -> torch.device:
    """The kind of device a run of the spec trains on, without starting one."""
    return torch.device("cuda" if torch.cuda.is_available() and not spec.run.cpu else "cpu")


def memory_measure(spec: RunSpec, device: torch.device) -> str:
    chosen = spec.budget.memory_measure
    if chosen == "auto":
        return "cuda" if device.type == "cuda" else "analytic"
    if chosen == "cuda" and device.type != "cuda":
        raise SpecError(f"budget.memory_measure = 'cuda' needs a CUDA device, this run is on {device.type}; use 'analytic' or 'auto'")
    return chosen
