"""Meta learning-rate schedules: the shape inside a task depends on the task's place in the stream.

Roth et al., 2024 ("A Practitioner's Guide to Continual Multimodal Pretraining",
§ on learning-rate schedules) restart an in-task schedule every task but lower
its peak as the stream goes on, so later tasks move the model less and forget
less. Task t gets the peak base_t = lr_min + v_t (lr0 - lr_min), with v_0 = 1,
warms up linearly to it and decays from it with the in-task shape (DESIGN §6).
All factors are relative to lr0 (lr0 = 1 here).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from fomo_host.api import FomoError

from .schedules import (
    ScheduleParams,
    StepsOrFraction,
    check_fractions_fit,
    check_warmup_cooldown,
    cosine_decay,
    linear_warmup,
    resolve_steps,
    rsqrt_factor,
)


def peak(v: float, minimum: float) -> float:
    """base_t = lr_min + v_t (lr0 - lr_min)."""
    return minimum + v * (1 - minimum)


# ----------------------------------------------------------------------------- rsqrt meta schedules


class RsqrtMetaParams(ScheduleParams):
    warmup: StepsOrFraction = Field(default=0.1, gt=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")
    cooldown: StepsOrFraction = Field(default=0.1, ge=0, description="linear cooldown to 0: fraction of the task (< 1) or steps (>= 1)")
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")

    @model_validator(mode="after")
    def _phases_fit(self) -> RsqrtMetaParams:
        check_fractions_fit(self, "warmup", "cooldown")
        return self


class _RsqrtMeta:
    name = ""

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: RsqrtMetaParams) -> None:
        self.params = params

    def peak_scale(self, task: int, steps_per_task: int, warmup: int, cooldown: int) -> float:
        raise NotImplementedError

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        cooldown = resolve_steps(self.params.cooldown, steps_per_task)
        check_warmup_cooldown(self.name, warmup, cooldown, steps_per_task)
        base = peak(self.peak_scale(task, steps_per_task, warmup, cooldown), self.params.min_factor)
        return rsqrt_factor(step, steps_per_task, warmup, cooldown, base, base, self.params.min_factor)


class RsqrtAutoregressive(_RsqrtMeta):
    """rsqrt per task (warmup, inverse square root, cooldown to 0) with an autoregressive peak (Roth et al., 2024).

    v_t = sqrt((t+1) W / (t S + W)); after the warmup to base_t:
    lr_min + sqrt(W/n) (base_t - lr_min), times the cooldown ramp (C - (n-(S-C)) - 1)/C.
    """

    name = "rsqrt-autoregressive"

    def peak_scale(self, task: int, steps_per_task: int, warmup: int, cooldown: int) -> float:
        return math.sqrt((task + 1) * warmup / (task * steps_per_task + warmup))


class RsqrtContinued(_RsqrtMeta):
    """rsqrt per task whose peak continues the decay of the tasks before (Roth et al., 2024).

    v_t = sqrt(W / (t (S-C) - (t-1) W)): the rsqrt value the previous tasks' decay
    phases, laid end to end, have reached; then as rsqrt-autoregressive.
    """

    name = "rsqrt-continued"

    def peak_scale(self, task: int, steps_per_task: int, warmup: int, cooldown: int) -> float:
        return math.sqrt(warmup / (task * (steps_per_task - cooldown) - (task - 1) * warmup))


class RsqrtRecoveredParams(RsqrtMetaParams):
    warmup_peak: Literal["reference", "join"] = Field(
        default="reference",
        description="warmup target of tasks t > 0: 'reference' sqrt(W/(2k)) as the paper's code, 'join' sqrt(W/k)",
    )


class RsqrtRecovered:
    """One rsqrt decay continued across tasks, with a warmup and cooldown in every task (Roth et al., 2024).

    With k = t (S-C-W), after the warmup lr = lr_min + sqrt(W/(n+k)) (lr0 - lr_min)
    (relative to lr0), times the cooldown ramp. Task 0 is plain rsqrt; a task t > 0
    warms up linearly to lr_min + sqrt(W/(2k)) (lr0 - lr_min) with
    ``warmup_peak = "reference"`` (the paper's code, the default) or to
    lr_min + sqrt(W/k) (lr0 - lr_min) with ``"join"``, the value the decay curve
    takes at n = 0, so warmup and decay meet.
    """

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: RsqrtRecoveredParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        cooldown = resolve_steps(self.params.cooldown, steps_per_task)
        check_warmup_cooldown("rsqrt-recovered", warmup, cooldown, steps_per_task)
        minimum = self.params.min_factor
        decay_steps = steps_per_task - cooldown - warmup
        # checked in every task, the first included, and whatever the number of tasks: a stream the later tasks
        # cannot shape is refused at its first step, not after tasks have trained (an update may add tasks to any run)
        if decay_steps <= 0:
            raise FomoError(
                f"scheduler 'rsqrt-recovered': warmup ({warmup}) + cooldown ({cooldown}) leave no decay steps in a task of "
                f"{steps_per_task} steps; lower scheduler.params.warmup or scheduler.params.cooldown"
            )
        if task == 0:
            return rsqrt_factor(step, steps_per_task, warmup, cooldown, 1.0, 1.0, minimum)
        offset = task * decay_steps
        divisor = 2 * offset if self.params.warmup_peak == "reference" else offset
        warmup_peak = peak(math.sqrt(warmup / divisor), minimum)
        return rsqrt_factor(step, steps_per_task, warmup, cooldown, warmup_peak, 1.0, minimum, offset=offset)


# ----------------------------------------------------------------------------- cosine meta schedules


class CosineMetaParams(ScheduleParams):
    warmup: StepsOrFraction = Field(default=0.1, ge=0, description="linear warmup: fraction of the task (< 1) or steps (>= 1)")
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")


def cosine_autoregressive_scale(task: int, steps_per_task: int, warmup: int) -> float:
    """v_0 = 1; v_t = 0.5 (1 + cos(pi (t(S-W)+1) / ((t+1)(S-W)))) for t > 0 (about 1, 0.5, 0.25, 0.15, ...)."""
    if task == 0:
        return 1.0
    decay_steps = steps_per_task - warmup
    return 0.5 * (1 + math.cos(math.pi * (task * decay_steps + 1) / ((task + 1) * decay_steps)))


def _check_cosine_warmup(name: str, warmup: int, steps_per_task: int) -> None:
    if warmup >= steps_per_task:
        raise FomoError(
            f"scheduler {name!r}: the warmup ({warmup} steps) fills the whole task of {steps_per_task} steps; lower scheduler.params.warmup"
        )


class CosineAutoregressive:
    """Cosine with warmup per task, with an autoregressive peak (Roth et al., 2024).

    Task t warms up linearly to base_t = lr_min + v_t (lr0 - lr_min),
    v_t = 0.5 (1 + cos(pi (t(S-W)+1) / ((t+1)(S-W)))) (v_0 = 1), then decays
    lr_min + 0.5 (1 + cos(pi (n-W+1)/(S-W))) (base_t - lr_min).
    """

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: CosineMetaParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        _check_cosine_warmup("cosine-autoregressive", warmup, steps_per_task)
        minimum = self.params.min_factor
        base = peak(cosine_autoregressive_scale(task, steps_per_task, warmup), minimum)
        if step < warmup:
            return linear_warmup(step, warmup, base)
        return cosine_decay(step, steps_per_task, warmup, base, minimum)


class CosineDynamicRecovery:
    """Warmup to the autoregressive cosine peak, then one cosine over the horizon so far (Roth et al., 2024).

    Task t warms up to base_t (as cosine-autoregressive), then follows one
    cosine-with-warmup over H = (t+1) S at the global step g = t S + n:
    lr_min + 0.5 (1 + cos(pi (g-W_H+1)/(H-W_H))) (lr0 - lr_min), with
    W_H = ceil(warmup * H) for a warmup fraction and W_H = (t+1) W for a warmup in
    steps (whenever W_H = (t+1) W, the decay starts exactly at base_t).
    """

    needs_horizon = False
    """The factor never depends on the number of tasks: a run with it can be updated."""

    def __init__(self, params: CosineMetaParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        _check_cosine_warmup("cosine-dynamic-recovery", warmup, steps_per_task)
        minimum = self.params.min_factor
        if step < warmup:
            return linear_warmup(step, warmup, peak(cosine_autoregressive_scale(task, steps_per_task, warmup), minimum))
        horizon = (task + 1) * steps_per_task
        horizon_warmup = resolve_steps(self.params.warmup, horizon) if self.params.warmup < 1 else (task + 1) * warmup
        return cosine_decay(task * steps_per_task + step, horizon, horizon_warmup, 1.0, minimum)
