"""Registers the CSV and TensorBoard loggers: they write only for runs whose spec lists them in ``run.loggers``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fomo_host.api import hookimpl
from fomo_host.commands.common import is_main_process

from .csv_logger import CSVLogger
from .tensorboard_logger import TensorBoardLogger

LOGGERS: dict[str, Callable[[Path, Any, int | None], Any]] = {
    "csv": lambda run_dir, spec, resumed: CSVLogger(run_dir, resumed),
    "tensorboard": TensorBoardLogger,
}
_open: dict[tuple[Path, str], Any] = {}
"""The loggers of the runs in progress in this process, by (run directory, logger name)."""


def _loggers_of(run_dir: Path, loggers: list[str]) -> list[Any]:
    return [_open[(Path(run_dir), name)] for name in loggers if (Path(run_dir), name) in _open]


@hookimpl
def logger_names() -> list[str]:
    return sorted(LOGGERS)


@hookimpl
def on_run_start(run_dir: Path, spec: Any, resumed_from_task: int | None, loggers: list[str]) -> None:
    if not is_main_process():  # one process writes the logs of a multi-process run
        return
    for name in loggers:
        if name in LOGGERS:
            key = (Path(run_dir), name)
            if key in _open:  # the same run started again in this process (after an interruption)
                _open.pop(key).close()
            _open[key] = LOGGERS[name](Path(run_dir), spec, resumed_from_task)


@hookimpl
def on_task_start(run_dir: Path, task: int, concepts: list[str], loggers: list[str]) -> None:
    for logger in _loggers_of(run_dir, loggers):
        logger.task_start(task, concepts)


@hookimpl
def on_task_end(run_dir: Path, task: int, steps: int, mean_loss: float, loggers: list[str]) -> None:
    for logger in _loggers_of(run_dir, loggers):
        logger.task_end(task, steps, mean_loss)


@hookimpl
def on_evaluation(run_dir: Path, record: dict[str, Any], loggers: list[str]) -> None:
    for logger in _loggers_of(run_dir, loggers):
        logger.evaluation(record)


@hookimpl
def on_run_end(run_dir: Path, loggers: list[str]) -> None:
    for name in loggers:
        logger = _open.pop((Path(run_dir), name), None)
        if logger is not None:
            logger.close()
