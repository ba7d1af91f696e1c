"""Compute budget in memory-adjusted FLOPs (DESIGN §5): measure a method's training step, derive steps per task.

- :mod:`.arithmetic`: steps per task from the spec's budget and measured costs (the one place they are computed);
- :mod:`.measurement`: GFLOPs and peak memory of the engine's own training step;
- :mod:`.cache`: measured costs kept on disk, keyed by what they depend on;
- :mod:`.budgets`: a run's budget, from the cache or measured now.
"""

from .arithmetic import Budget, StepCost, derive_budget, fixed_steps, steps_within, unmeasured_budget
from .budgets import (
    memory_measure,
    reference_method,
    reference_optimizer,
    references_declared,
    resolve_budget,
    resolve_budgets,
    steps_per_task,
    training_device,
)
from .measurement import MeasurementError

__all__ = [
    "Budget",
    "MeasurementError",
    "StepCost",
    "derive_budget",
    "fixed_steps",
    "memory_measure",
    "reference_method",
    "reference_optimizer",
    "references_declared",
    "resolve_budget",
    "resolve_budgets",
    "steps_per_task",
    "steps_within",
    "training_device",
    "unmeasured_budget",
]
