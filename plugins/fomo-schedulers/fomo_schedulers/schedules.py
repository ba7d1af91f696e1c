"""Per-task learning-rate schedules: pure functions of (step in task, steps per task, task, number of tasks).

Each returns a factor that multiplies the optimizer's peak learning rate lr0.
Warmup is given as a fraction of the task (< 1) or as a number of steps (>= 1):
W = ceil(warmup * S) for a fraction.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


def resolve_steps(amount: float, steps_per_task: int) -> int:
    """A fraction of the task (< 1) or a step count (>= 1), never more than the task."""
    steps = math.ceil(amount * steps_per_task) if amount < 1 else int(amount)
    return min(steps, steps_per_task)


class ConstantParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warmup: float = Field(default=0.0, ge=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")


class Constant:
    """Constant learning rate after an optional linear warmup."""

    def __init__(self, params: ConstantParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        return (step + 1) / warmup if step < warmup else 1.0


class CosineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warmup: float = Field(default=0.1, ge=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")


class Cosine:
    """Linear warmup to lr0, then cosine decay to lr_min; restarts every task.

    n < W: lr0 (n+1)/W; else lr_min + 0.5 (1 + cos(pi (n-W+1)/(S-W))) (lr0 - lr_min).
    """

    def __init__(self, params: CosineParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        if step < warmup:
            return (step + 1) / warmup
        minimum = self.params.min_factor
        progress = (step - warmup + 1) / max(steps_per_task - warmup, 1)
        return minimum + 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * (1 - minimum)
