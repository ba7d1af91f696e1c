"""The throttled per-step report to loggers: every ``run.log_every_steps`` steps, the mean loss since the last report.

The step loop hands over each step's loss as a device tensor; the losses are summed
on the device and read (one host synchronisation) only when a report is due.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..process import ProcessInfo


class StepLog:
    """Reports one task's training progress through the ``on_train_step`` hook."""

    def __init__(
        self,
        hook: Any,
        run_dir: Path,
        loggers: list[str],
        every: int,
        task: int,
        num_tasks: int,
        steps: int,
        learning_rate: Callable[[int], float],
        process: ProcessInfo,
    ) -> None:
        self._process = process
        self._hook, self._run_dir, self._loggers, self._every = hook, run_dir, loggers, every
        self._task, self._num_tasks, self._steps, self._learning_rate = task, num_tasks, steps, learning_rate
        self._loss_sum: torch.Tensor | None = None
        self._count = 0

    def __call__(self, step: int, loss: torch.Tensor) -> None:
        """``step`` is 0-based, as the step loop counts."""
        self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
        self._count += 1
        done = step + 1
        if done % self._every and done != self._steps:
            return
        mean = float(self._loss_sum) / self._count
        self._loss_sum, self._count = None, 0
        self._hook.on_train_step(
            run_dir=self._run_dir,
            task=self._task,
            num_tasks=self._num_tasks,
            step=done,
            steps=self._steps,
            global_step=self._task * self._steps + done,
            loss=mean,
            lr=self._learning_rate(step),
            loggers=self._loggers,
            process=self._process,
        )
