"""Conformance tests for learning-rate schedulers: subclass :class:`SchedulerConformance` in your plugin's tests.

::

    from fomo_host.testing import SchedulerConformance

    class TestMySchedule(SchedulerConformance):
        scheduler_name = "my-schedule"
        params = {"warmup": 0.1}
        invalid_params = {"warmup": -1}

A subclass gets: the params validate and bad ones are rejected; the factor is a finite,
non-negative number at every step of streams of several shapes (one step, one task,
many of both); and it is a pure function of (step, steps per task, task, number of
tasks): two instances agree, and the order of the calls changes nothing. A schedule may
refuse a stream it cannot shape (a warmup longer than the task) with one
:class:`fomo_host.api.FomoError` line, but then at its first step, never partway
through; the larger streams must be accepted. A scheduler that declares ``needs_horizon = False``
must give the same factor whatever the number of tasks (a run with it can be updated with more).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from ..components import Scheduler, needs_horizon
from ..errors import FomoError
from .helpers import build_component, validate_params


class SchedulerConformance:
    """The conformance suite of the ``scheduler`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    scheduler_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the scheduler must reject (None: only the unknown-key check)."""
    streams: ClassVar[tuple[tuple[int, int], ...]] = ((1, 1), (1, 4), (2, 3), (9, 1), (10, 5), (100, 20))
    """(steps per task, number of tasks) of the streams every step of which is checked."""
    max_factor: ClassVar[float | None] = None
    horizon_free: ClassVar[bool | None] = None
    """What the scheduler must declare: True for ``needs_horizon = False``, False for one that needs the number of
    tasks; None: whatever it declares (a horizon-free declaration is checked either way)."""
    """A bound the factor never exceeds (e.g. 1.0 for a schedule that never exceeds optimizer.lr); None: no bound."""

    def scheduler(self) -> Scheduler:
        scheduler: Scheduler = build_component("scheduler", self.scheduler_name, self.params)
        return scheduler

    def accepted_streams(self) -> list[tuple[int, int]]:
        """The streams the schedule takes: a refusal comes at the first step, as one line."""
        scheduler, accepted = self.scheduler(), []
        for steps_per_task, num_tasks in self.streams:
            try:
                scheduler(0, steps_per_task, 0, num_tasks)
            except FomoError as exc:
                assert "\n" not in str(exc), f"the refusal of ({steps_per_task} steps, {num_tasks} tasks) is not one line"
                continue
            accepted.append((steps_per_task, num_tasks))
        assert (self.streams[-1][0], self.streams[-1][1]) in accepted, f"the largest stream {self.streams[-1]} is refused"
        return accepted

    def every_step(self) -> Iterator[tuple[int, int, int, int]]:
        for steps_per_task, num_tasks in self.accepted_streams():
            for task in range(num_tasks):
                for step in range(steps_per_task):
                    yield step, steps_per_task, task, num_tasks

    def test_params_validate_and_reject_bad_values(self) -> None:
        validate_params("scheduler", self.scheduler_name, self.params)
        with pytest.raises(ValidationError):
            validate_params("scheduler", self.scheduler_name, {**self.params, "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                validate_params("scheduler", self.scheduler_name, {**self.params, **self.invalid_params})

    def test_defined_finite_and_non_negative_at_every_step(self) -> None:
        scheduler = self.scheduler()
        for point in self.every_step():
            try:
                factor = scheduler(*point)
            except FomoError as exc:
                raise AssertionError(f"(step, steps per task, task, tasks) = {point}: refused partway through the stream: {exc}") from exc
            assert isinstance(factor, int | float) and not isinstance(factor, bool), f"{point}: {factor!r} is not a number"
            assert math.isfinite(factor) and factor >= 0, f"(step, steps per task, task, tasks) = {point}: factor {factor}"
            if self.max_factor is not None:
                assert factor <= self.max_factor + 1e-12, f"{point}: factor {factor} above {self.max_factor}"

    def test_a_pure_function_of_its_arguments(self) -> None:
        points = list(self.every_step())
        forward = [self.scheduler()(*point) for point in points]
        fresh = self.scheduler()
        backward = [fresh(*point) for point in reversed(points)][::-1]
        assert forward == backward, "the factor depends on the order of the calls or on the instance"
        assert [fresh(*point) for point in points] == forward, "calling again changed the factor"

    def test_a_horizon_free_schedule_ignores_the_number_of_tasks(self) -> None:
        scheduler = self.scheduler()
        declared = getattr(scheduler, "needs_horizon", None)
        assert declared is None or isinstance(declared, bool), f"needs_horizon is {declared!r}, not a bool"
        if self.horizon_free is not None:
            assert needs_horizon(scheduler) is not self.horizon_free, f"needs_horizon should be {not self.horizon_free}"
        if needs_horizon(scheduler):
            return
        for step, steps_per_task, task, num_tasks in self.every_step():
            factor = scheduler(step, steps_per_task, task, num_tasks)
            for other in (task + 1, num_tasks + 7):
                assert scheduler(step, steps_per_task, task, other) == factor, (
                    f"(step, steps per task, task) = {(step, steps_per_task, task)}: the factor changes from {num_tasks} to {other} "
                    "tasks, but the scheduler declares needs_horizon = False"
                )
