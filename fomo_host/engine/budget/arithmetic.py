"""Budget arithmetic: from a spec's ``[budget]`` and measured step costs to steps per task (DESIGN §5).

``MAF(m) = GFLOPs per training step(m) x memory multiplier(m)``, where the multiplier is the
method's peak training memory over full fine-tuning's (same model, batch, precision and
optimizer). With a budget of ``maf_per_task``, a method trains ``budget / MAF(m)`` steps per task;
a budget in steps or samples fixes the steps, and the measured cost is only recorded beside them.
This is the one place steps per task are computed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ...errors import SpecError
from ...spec import RunSpec


@dataclass(frozen=True)
class StepCost:
    """What one method costs on one model and batch, as measured."""

    step_gflops: float
    """GFLOPs of one training step."""
    end_task_gflops: float
    """GFLOPs of the method's end-of-task work, once per task."""
    peak_memory_bytes: int
    memory_measure: str
    """``cuda`` or ``analytic``."""


@dataclass(frozen=True)
class Budget:
    """The compute a run spends per task, and how it was derived."""

    given: str
    """Which key of the spec's ``[budget]`` set it: ``steps_per_task``, ``samples_per_task`` or ``maf_per_task``."""
    batch_size: int
    steps_per_task: int
    step_gflops: float
    end_task_gflops: float
    memory_multiplier: float
    memory_measure: str
    peak_memory_bytes: int
    reference_peak_memory_bytes: int

    @property
    def samples_per_task(self) -> int:
        return self.steps_per_task * self.batch_size

    @property
    def gflops_per_step(self) -> float:
        """A step's GFLOPs with the end-of-task work spread over the task."""
        return self.step_gflops + self.end_task_gflops / self.steps_per_task

    @property
    def maf_per_step(self) -> float:
        return self.gflops_per_step * self.memory_multiplier

    @property
    def gflops_per_task(self) -> float:
        return self.gflops_per_step * self.steps_per_task

    @property
    def maf_per_task(self) -> float:
        return self.maf_per_step * self.steps_per_task

    def as_record(self) -> dict[str, Any]:
        """The budget as results.jsonl and summary.json store it."""
        record = asdict(self)
        for name in ("samples_per_task", "gflops_per_step", "maf_per_step", "gflops_per_task", "maf_per_task"):
            record[name] = getattr(self, name)
        return record


def fixed_steps(spec: RunSpec) -> tuple[str, int] | None:
    """(the key that gave them, steps per task) where the spec fixes the steps; None for a budget in MAF."""
    return spec.budget.fixed_steps(spec.run.batch_size)


def steps_within(maf_per_task: float, cost: StepCost, memory_multiplier: float) -> int:
    """The most steps whose MAF (end-of-task work included) fits the budget: floor((budget / multiplier - end) / step)."""
    available = maf_per_task / memory_multiplier - cost.end_task_gflops
    steps = math.floor(available / cost.step_gflops * (1 + 1e-12))
    if steps < 1:
        needed = (cost.step_gflops + cost.end_task_gflops) * memory_multiplier
        raise SpecError(f"budget.maf_per_task = {maf_per_task:g} is below one step of this method ({needed:,.1f} MAF); raise it")
    return steps


def derive_budget(spec: RunSpec, cost: StepCost, reference: StepCost) -> Budget:
    """Steps per task from the spec's budget, with the measured cost recorded beside them."""
    multiplier = cost.peak_memory_bytes / reference.peak_memory_bytes if reference.peak_memory_bytes else math.nan
    fixed = fixed_steps(spec)
    if fixed is not None:
        given, steps = fixed
    else:
        assert spec.budget.maf_per_task is not None
        given, steps = "maf_per_task", steps_within(spec.budget.maf_per_task, cost, multiplier)
    return Budget(
        given=given,
        batch_size=spec.run.batch_size,
        steps_per_task=steps,
        step_gflops=cost.step_gflops,
        end_task_gflops=cost.end_task_gflops,
        memory_multiplier=multiplier,
        memory_measure=cost.memory_measure,
        peak_memory_bytes=cost.peak_memory_bytes,
        reference_peak_memory_bytes=reference.peak_memory_bytes,
    )


def unmeasured_budget(spec: RunSpec) -> Budget:
    """A budget in steps or samples whose compute could not be measured: the steps stand, the figures are NaN."""
    nan = math.nan
    cost = StepCost(step_gflops=nan, end_task_gflops=nan, peak_memory_bytes=0, memory_measure="none")
    budget = derive_budget(spec, cost, cost)
    return replace(budget, memory_multiplier=nan)
