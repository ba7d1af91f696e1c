"""What a run tells the plugins as it goes: the lifecycle hooks (``on_run_start`` ... ``on_run_end``) and the per-step log.

Every hook is called on every process with the spec's logger names and the process's place in
the run; the loggers decide what to write (most write from the main process only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..components import TaskInfo
from ..spec import RunSpec
from .runtime import Runtime
from .step_log import StepLog


class RunEvents:
    """The run's calls into the lifecycle hooks."""

    def __init__(
        self, hook: Any, run_dir: Path, spec: RunSpec, runtime: Runtime, num_tasks: int, scheduler: Callable[[int, int, int, int], float]
    ) -> None:
        self.hook, self.run_dir, self.spec, self.runtime = hook, run_dir, spec, runtime
        self.num_tasks, self.scheduler = num_tasks, scheduler
        self.loggers = spec.run.logger_names()

    def run_start(self, steps_per_task: int, resumed_from_task: int | None) -> None:
        self.hook.on_run_start(
            run_dir=self.run_dir,
            spec=self.spec,
            num_tasks=self.num_tasks,
            steps_per_task=steps_per_task,
            resumed_from_task=resumed_from_task,
            loggers=self.loggers,
            process=self.runtime.process,
        )

    def task_start(self, info: TaskInfo) -> None:
        self.hook.on_task_start(
            run_dir=self.run_dir,
            task=info.index,
            num_tasks=self.num_tasks,
            steps=info.steps,
            concepts=[str(c) for c in info.concepts],
            loggers=self.loggers,
            process=self.runtime.process,
        )

    def task_end(self, info: TaskInfo, mean_loss: float) -> None:
        self.hook.on_task_end(
            run_dir=self.run_dir,
            task=info.index,
            num_tasks=self.num_tasks,
            steps=info.steps,
            mean_loss=mean_loss,
            loggers=self.loggers,
            process=self.runtime.process,
        )

    def evaluation(self, record: dict[str, Any]) -> None:
        self.hook.on_evaluation(run_dir=self.run_dir, record=record, loggers=self.loggers, process=self.runtime.process)

    def run_end(self, summary: dict[str, Any]) -> None:
        self.hook.on_run_end(run_dir=self.run_dir, summary=summary, loggers=self.loggers, process=self.runtime.process)

    def step_log(self, info: TaskInfo) -> StepLog | None:
        """The per-step report to the loggers, where the spec turns one on (the main process reports)."""
        if not self.loggers or not self.runtime.is_main:
            return None
        return StepLog(
            self.hook,
            self.run_dir,
            self.loggers,
            self.spec.run.log_every_steps,
            info.index,
            self.num_tasks,
            info.steps,
            lambda step: self.spec.optimizer.lr * self.scheduler(step, info.steps, info.index, self.num_tasks),
            self.runtime.process,
        )
