"""A run as TensorBoard scalars and text, through ``torch.utils.tensorboard.SummaryWriter``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fomo_host.api import Logger, LoggerContext

from .params import TensorBoardParams
from .scalars import evaluation_scalars, tasks_done


class TensorBoardLogger(Logger):
    """TensorBoard event files in the run directory (tensorboard/): scalars by tasks done, steps by optimizer step.

    Writes event files under ``tensorboard/`` (``params.directory``) in the run directory.

    The step axis of the evaluations is the number of tasks done (0 for the base model), so runs whose
    methods train different numbers of steps per task (a budget in memory-adjusted FLOPs) line up. Scalars:
    ``aggregate/A_KA``, ``aggregate/A_ZS``, ``aggregate/GM``, ``score/<dataset>``, ``metric/<dataset>/<metric>``,
    ``compute/gflops``, ``compute/maf``, ``progress/samples_seen``, ``train/mean_loss``, ``train/steps``; text: the
    spec and each task's concepts. The training loss and learning rate every ``run.log_every_steps`` steps
    (``train/loss``, ``train/lr``) go to ``tensorboard/steps/``, on the axis of optimizer steps. A resumed run
    purges the events of the tasks it trains again.
    """

    def __init__(self, params: TensorBoardParams, context: LoggerContext) -> None:
        from torch.utils.tensorboard import SummaryWriter

        resumed_from_task = context.resumed_from_task
        folder = context.run_dir / params.directory
        if resumed_from_task is not None:
            for existing in (folder, folder / "steps"):
                wait_past_newest_event_file(existing)
        self.writer = SummaryWriter(
            log_dir=str(folder),
            purge_step=resumed_from_task + 1 if resumed_from_task is not None else None,
            flush_secs=params.flush_secs,
        )
        self.steps = SummaryWriter(
            log_dir=str(folder / "steps"),
            purge_step=resumed_from_task * context.steps_per_task + 1 if resumed_from_task is not None else None,
            flush_secs=params.flush_secs,
        )
        if resumed_from_task is None:
            toml = context.spec.to_toml()
            self.writer.add_text("spec", "\n".join("    " + line for line in toml.splitlines()), 0)

    def task_start(self, task: int, concepts: list[str]) -> None:
        self.writer.add_text("task/concepts", ", ".join(concepts), task + 1)

    def task_end(self, task: int, steps: int, mean_loss: float) -> None:
        self.writer.add_scalar("train/mean_loss", mean_loss, task + 1)
        self.writer.add_scalar("train/steps", steps, task + 1)

    def train_step(self, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
        self.steps.add_scalar("train/loss", loss, global_step)
        self.steps.add_scalar("train/lr", lr, global_step)

    def evaluation(self, record: dict[str, Any]) -> None:
        step = tasks_done(record)
        for tag, value in evaluation_scalars(record).items():
            self.writer.add_scalar(tag, value, step)
        # an interrupted run keeps what it logged
        self.writer.flush()
        self.steps.flush()

    def run_end(self, summary: dict[str, Any]) -> None:
        """The last evaluation has the end point."""

    def close(self) -> None:
        self.writer.close()
        self.steps.close()


EVENT_FILE_PREFIX = "events.out.tfevents."


def wait_past_newest_event_file(folder: Path) -> None:
    """Wait (at most a second or two) until the clock's second is past that of the newest event file in ``folder``.

    TensorBoard reads a folder's event files in the order of their names, ``events.out.tfevents.<second>.<host>.<pid>.<n>``;
    a resumed run's file must come after the interrupted run's for its purge to drop the redone tasks, and two files of
    one second are ordered by pid and counter as text ("10" before "9"), so the new file starts in a later second.
    """
    seconds = []
    for path in folder.glob(EVENT_FILE_PREFIX + "*"):
        field = path.name[len(EVENT_FILE_PREFIX) :].split(".", 1)[0]
        if field.isdigit():
            seconds.append(int(field))
    if seconds:
        while int(time.time()) <= max(seconds):
            time.sleep(0.02)
