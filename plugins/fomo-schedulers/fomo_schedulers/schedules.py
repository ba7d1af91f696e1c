"""Per-task learning-rate schedules: pure functions of (step in task, steps per task, task, number of tasks).

Each returns a factor that multiplies the optimizer's peak learning rate lr0, and
restarts with every task. Notation (DESIGN §6): S steps per task, n step in the
task (0-based), W warmup steps, C cooldown steps, lr_min = lr0 * min_factor.
Warmup and cooldown are given as a fraction of the task (< 1, W = ceil(fraction * S))
or as a number of steps (>= 1).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from fomo_host.api import FomoError

# A fraction times S lands a hair above an integer in floating point (0.07 * 100 =
# 7.000000000000001); without this slack ceil() would add a whole step.
_CEIL_SLACK = 1e-9


def _whole_if_steps(value: float) -> float:
    if value >= 1 and value != int(value):
        raise ValueError(f"{value:g} is neither a fraction of the task (< 1) nor a whole number of steps (>= 1)")
    return value


StepsOrFraction = Annotated[float, AfterValidator(_whole_if_steps)]
"""A fraction of the task (< 1) or a whole number of steps (>= 1)."""


def resolve_steps(amount: float, steps_per_task: int) -> int:
    """A fraction of the task (< 1, rounded up) or a step count (>= 1), never more than the task."""
    steps = math.ceil(amount * steps_per_task - _CEIL_SLACK) if amount < 1 else int(amount)
    return min(max(steps, 0), steps_per_task)


def linear_warmup(step: int, warmup: int, peak: float) -> float:
    """n < W: peak * (n+1)/W."""
    return peak * (step + 1) / warmup


def cosine_decay(step: int, steps_per_task: int, warmup: int, peak: float, minimum: float) -> float:
    """lr_min + 0.5 (1 + cos(pi (n-W+1)/(S-W))) (peak - lr_min), reaching lr_min at the last step."""
    progress = min((step - warmup + 1) / max(steps_per_task - warmup, 1), 1.0)
    return minimum + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - minimum)


def cooldown_factor(step: int, steps_per_task: int, cooldown: int) -> float:
    """1 before the cooldown; (C - (n - (S-C)) - 1)/C inside it, which is 0 at the last step."""
    start = steps_per_task - cooldown
    if cooldown == 0 or step < start:
        return 1.0
    return (cooldown - (step - start) - 1) / cooldown


def check_warmup_cooldown(name: str, warmup: int, cooldown: int, steps_per_task: int) -> None:
    if warmup + cooldown > steps_per_task:
        raise FomoError(
            f"scheduler {name!r}: warmup ({warmup} steps) + cooldown ({cooldown} steps) exceed the {steps_per_task} steps "
            "of a task; lower scheduler.params.warmup or scheduler.params.cooldown"
        )


class ScheduleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_fractions_fit(params: BaseModel, first: str, second: str) -> None:
    """Two phases given as fractions of a task must fit in it together; caught when the spec is validated.

    Phases given in steps depend on the steps per task, which the host knows only once the
    budget is resolved; it then evaluates the whole schedule before training, which catches those.
    """
    one, two = getattr(params, first), getattr(params, second)
    if one < 1 and two < 1 and one + two > 1:
        raise ValueError(f"{first} ({one:g}) + {second} ({two:g}) exceed the whole task; their fractions must sum to at most 1")


# ----------------------------------------------------------------------------- constant


class ConstantParams(ScheduleParams):
    warmup: StepsOrFraction = Field(default=0.0, ge=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")


class Constant:
    """Constant learning rate lr0 after an optional linear warmup (n < W: lr0 (n+1)/W)."""

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: ConstantParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        return linear_warmup(step, warmup, 1.0) if step < warmup else 1.0


# ----------------------------------------------------------------------------- cosine


class CosineParams(ScheduleParams):
    warmup: StepsOrFraction = Field(default=0.1, ge=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")


class Cosine:
    """Linear warmup to lr0, then cosine decay to lr_min; restarts every task (DESIGN §6).

    n < W: lr0 (n+1)/W; else lr_min + 0.5 (1 + cos(pi (n-W+1)/(S-W))) (lr0 - lr_min).
    """

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: CosineParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        if step < warmup:
            return linear_warmup(step, warmup, 1.0)
        return cosine_decay(step, steps_per_task, warmup, 1.0, self.params.min_factor)


# ----------------------------------------------------------------------------- rsqrt


class RsqrtParams(ScheduleParams):
    warmup: StepsOrFraction = Field(default=0.1, gt=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")
    cooldown: StepsOrFraction = Field(default=0.1, ge=0, description="linear cooldown to 0: fraction of the task (< 1) or steps (>= 1)")
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")

    @model_validator(mode="after")
    def _phases_fit(self) -> RsqrtParams:
        check_fractions_fit(self, "warmup", "cooldown")
        return self


def rsqrt_factor(
    step: int,
    steps_per_task: int,
    warmup: int,
    cooldown: int,
    warmup_peak: float,
    decay_peak: float,
    minimum: float,
    offset: int = 0,
) -> float:
    """Warmup to ``warmup_peak``; then lr_min + sqrt(W/(n+offset)) (decay_peak - lr_min); times the cooldown ramp."""
    if step < warmup:
        return linear_warmup(step, warmup, warmup_peak)
    value = minimum + math.sqrt(warmup / (step + offset)) * (decay_peak - minimum)
    return value * cooldown_factor(step, steps_per_task, cooldown)


class Rsqrt:
    """Inverse-square-root schedule with linear warmup and linear cooldown; restarts every task (DESIGN §6).

    n < W: lr0 (n+1)/W; W <= n < S-C: r(n) = lr_min + sqrt(W/n) (lr0 - lr_min);
    n >= S-C: r(n) (C - (n-(S-C)) - 1)/C, which reaches 0 at the last step.
    """

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: RsqrtParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        cooldown = resolve_steps(self.params.cooldown, steps_per_task)
        check_warmup_cooldown("rsqrt", warmup, cooldown, steps_per_task)
        return rsqrt_factor(step, steps_per_task, warmup, cooldown, 1.0, 1.0, self.params.min_factor)


# ----------------------------------------------------------------------------- warmup-stable-decay


class WSDParams(ScheduleParams):
    warmup: StepsOrFraction = Field(default=0.1, ge=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")
    decay: StepsOrFraction = Field(default=0.2, gt=0, description="final decay phase: fraction of the task (< 1) or steps (>= 1)")
    decay_shape: Literal["linear", "cosine"] = Field(default="linear", description="shape of the decay from lr0 to lr_min")
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")

    @model_validator(mode="after")
    def _phases_fit(self) -> WSDParams:
        check_fractions_fit(self, "warmup", "decay")
        return self


class WSD:
    """Warmup-stable-decay (trapezoidal) schedule; restarts every task.

    n < W: lr0 (n+1)/W; W <= n < S-D: lr0; n >= S-D with p = (n-(S-D)+1)/D:
    linear lr_min + (1-p) (lr0 - lr_min), or cosine lr_min + 0.5 (1 + cos(pi p)) (lr0 - lr_min);
    both reach lr_min at the last step (MiniCPM, Hu et al., 2024; Hägele et al., 2024,
    "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations").
    """

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: WSDParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        decay = resolve_steps(self.params.decay, steps_per_task)
        if warmup + decay > steps_per_task:
            raise FomoError(
                f"scheduler 'wsd': warmup ({warmup} steps) + decay ({decay} steps) exceed the {steps_per_task} steps "
                "of a task; lower scheduler.params.warmup or scheduler.params.decay"
            )
        if step < warmup:
            return linear_warmup(step, warmup, 1.0)
        start = steps_per_task - decay
        if step < start:
            return 1.0
        progress = (step - start + 1) / decay
        minimum = self.params.min_factor
        if self.params.decay_shape == "linear":
            return minimum + (1 - progress) * (1 - minimum)
        return minimum + 0.5 * (1 + math.cos(math.pi * progress)) * (1 - minimum)
