"""Schedules for a stream whose length nobody knows: one warmup, then a level held across updates.

A deployed model gets update after update, and how many there will be is unknown,
so a schedule that needs the number of tasks (one cosine over the whole stream)
cannot be used: its decay would have to be stretched again at every update. The
"infinite" schedules of Ibrahim et al., 2024 ("Simple and Scalable Strategies to
Continually Pre-train Large Language Models") and of "Beyond Cosine Decay: On the
effectiveness of Infinite Learning Rate Schedule for Continual Pre-training" (2025)
warm up once, settle to a constant level that later updates continue, and anneal
briefly at the end of every update, so that each deployed model is an annealed
one. ``rsqrt-infinite`` is the inverse-square-root variant: its decay continues
over the global step instead of holding a level. ``cosine-stream`` is the
fixed-horizon schedule they replace, kept as the contrast: it needs the number of
tasks, and a run that uses it cannot be updated.

Notation (DESIGN §6): S steps per task, n step in the task, t task, g = t S + n the
global step, W warmup steps (in the first task only), C cooldown steps (every
task), lr_min = lr0 * min_factor.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from fomo_host.api import FomoError

from .schedules import ScheduleParams, StepsOrFraction, check_fractions_fit, cosine_decay, linear_warmup, resolve_steps


def cooldown_to(step: int, steps_per_task: int, cooldown: int, level: float, minimum: float) -> float:
    """Inside the last C steps: linear from ``level`` to lr_min, reaching lr_min at the last step; ``level`` before."""
    start = steps_per_task - cooldown
    if cooldown == 0 or step < start:
        return level
    progress = (step - start + 1) / cooldown
    return minimum + (1 - progress) * (level - minimum)


def check_phases(name: str, phases: dict[str, int], steps_per_task: int) -> None:
    if sum(phases.values()) > steps_per_task:
        shown = " + ".join(f"{key} ({value} steps)" for key, value in phases.items())
        raise FomoError(
            f"scheduler {name!r}: {shown} exceed the {steps_per_task} steps of a task; lower scheduler.params."
            + " or scheduler.params.".join(phases)
        )


# ----------------------------------------------------------------------------- infinite


class InfiniteParams(ScheduleParams):
    warmup: StepsOrFraction = Field(
        default=0.1, ge=0, description="linear warmup to lr0 in the first task only: fraction (< 1) or steps (>= 1)"
    )
    decay: StepsOrFraction = Field(
        default=0.2, ge=0, description="after the warmup, cosine from lr0 down to the constant level, first task only: fraction or steps"
    )
    constant: float = Field(default=0.5, gt=0, le=1, description="the level held across updates, as a factor of lr0")
    cooldown: StepsOrFraction = Field(
        default=0.1, ge=0, description="linear anneal to lr_min at the end of every task (update): fraction or steps"
    )
    rewarm: StepsOrFraction = Field(
        default=0.0, ge=0, description="tasks after the first: linear rise from lr_min back to the constant level: fraction or steps"
    )
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")

    @model_validator(mode="after")
    def _phases_fit(self) -> InfiniteParams:
        check_fractions_fit(self, "warmup", "decay")
        check_fractions_fit(self, "decay", "cooldown")
        check_fractions_fit(self, "rewarm", "cooldown")
        if self.warmup < 1 and self.decay < 1 and self.cooldown < 1 and self.warmup + self.decay + self.cooldown > 1:
            raise ValueError("warmup + decay + cooldown exceed the whole task; their fractions must sum to at most 1")
        if self.min_factor > self.constant:
            raise ValueError(f"min_factor ({self.min_factor:g}) above the constant level ({self.constant:g})")
        return self


class Infinite:
    """Infinite schedule: warmup once, settle to a constant level, hold it across updates, anneal at each update's end.

    First task: n < W: lr0 (n+1)/W; W <= n < W+D: cosine from lr0 to c lr0 (c = ``constant``);
    then c lr0. Every task: in the last C steps linear from c lr0 to lr_min (lr_min at the
    last step), so each deployed model is annealed. A task t > 0 starts again at c lr0, after
    an optional linear rewarm from lr_min over R steps. The factor at task t never depends on
    how many tasks follow, so a run can take more tasks (Ibrahim et al., 2024; "Beyond Cosine
    Decay", 2025).
    """

    needs_horizon = False

    def __init__(self, params: InfiniteParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        params = self.params
        cooldown = resolve_steps(params.cooldown, steps_per_task)
        level, minimum = params.constant, params.min_factor
        # the first task's phases are checked at every task: a stream the first task cannot shape is refused at its
        # first step, and every task of the same stream has the same steps
        warmup = resolve_steps(params.warmup, steps_per_task)
        decay = resolve_steps(params.decay, steps_per_task)
        rewarm = resolve_steps(params.rewarm, steps_per_task)
        check_phases("infinite", {"warmup": warmup, "decay": decay, "cooldown": cooldown}, steps_per_task)
        check_phases("infinite", {"rewarm": rewarm, "cooldown": cooldown}, steps_per_task)
        if task == 0:
            if step < warmup:
                return linear_warmup(step, warmup, 1.0)
            if step < warmup + decay:
                progress = (step - warmup + 1) / decay
                return level + 0.5 * (1 + math.cos(math.pi * progress)) * (1 - level)
        elif step < rewarm:
            return minimum + (level - minimum) * (step + 1) / rewarm
        return cooldown_to(step, steps_per_task, cooldown, level, minimum)


# ----------------------------------------------------------------------------- rsqrt without a horizon


class RsqrtInfiniteParams(ScheduleParams):
    warmup: StepsOrFraction = Field(default=0.1, gt=0, description="linear warmup in the first task only: fraction (< 1) or steps (>= 1)")
    cooldown: StepsOrFraction = Field(
        default=0.1, ge=0, description="linear anneal to lr_min at the end of every task (update): fraction or steps"
    )
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")

    @model_validator(mode="after")
    def _phases_fit(self) -> RsqrtInfiniteParams:
        check_fractions_fit(self, "warmup", "cooldown")
        return self


class RsqrtInfinite:
    """Inverse square root over the global step, warmed up once, annealed at the end of every update.

    g = t S + n. g < W: lr0 (g+1)/W; else r(g) = lr_min + sqrt(W/g) (lr0 - lr_min), and in
    the last C steps of every task linear from r(g) to lr_min. The next task continues the
    decay at its own global step (no rewarm), so the value at any step does not depend on
    the number of tasks (the rsqrt schedule's defining property: no horizon; Zhai et al.,
    2022; Hägele et al., 2024).
    """

    needs_horizon = False

    def __init__(self, params: RsqrtInfiniteParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        cooldown = resolve_steps(self.params.cooldown, steps_per_task)
        check_phases("rsqrt-infinite", {"warmup": warmup, "cooldown": cooldown}, steps_per_task)
        minimum = self.params.min_factor
        global_step = task * steps_per_task + step
        if global_step < warmup:
            return linear_warmup(global_step, warmup, 1.0)
        value = minimum + math.sqrt(warmup / global_step) * (1 - minimum)
        return cooldown_to(step, steps_per_task, cooldown, value, minimum)


# ----------------------------------------------------------------------------- one cosine over the whole stream (needs the horizon)


class CosineStreamParams(ScheduleParams):
    warmup: StepsOrFraction = Field(
        default=0.1, ge=0, description="linear warmup at the stream's start: fraction of a task (< 1) or steps (>= 1)"
    )
    min_factor: float = Field(default=1e-3, ge=0, le=1, description="lr_min = lr0 * min_factor")


class CosineStream:
    """One cosine with warmup over the whole stream, reaching lr_min at the last step of the last task.

    g = t S + n, H = T S (T tasks): g < W: lr0 (g+1)/W; else lr_min + 0.5 (1 + cos(pi (g-W+1)/(H-W))) (lr0 - lr_min).
    It needs the number of tasks up front (the horizon): a run that uses it cannot take more tasks.
    """

    needs_horizon = True

    def __init__(self, params: CosineStreamParams) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = resolve_steps(self.params.warmup, steps_per_task)
        horizon = num_tasks * steps_per_task
        if warmup >= horizon and horizon > 1:
            raise FomoError(
                f"scheduler 'cosine-stream': the warmup ({warmup} steps) fills the whole stream of {horizon} steps; "
                "lower scheduler.params.warmup"
            )
        global_step = task * steps_per_task + step
        if global_step < warmup:
            return linear_warmup(global_step, warmup, 1.0)
        return cosine_decay(global_step, horizon, warmup, 1.0, self.params.min_factor)
