"""Registers the loggers (CSV, TensorBoard, Weights & Biases, MLflow): each writes only for runs whose spec lists it in
``run.loggers``. A logger's module, and the tracker library it uses, is imported only when a run turns it on."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from fomo_host.api import ProcessInfo, hookimpl

LOGGERS: dict[str, str] = {
    "csv": "csv_logger:CSVLogger",
    "tensorboard": "tensorboard_logger:TensorBoardLogger",
    "wandb": "wandb_logger:WandbLogger",
    "mlflow": "mlflow_logger:MLflowLogger",
}
"""Logger name -> ``module:class`` within this package; the class takes (run_dir, spec, steps_per_task, resumed_from_task)."""
CHECKED = {"wandb": "wandb_logger", "mlflow": "mlflow_logger"}
"""Loggers whose module has ``problems(spec)``: what would stop them, checked when a spec is validated."""
_open: dict[tuple[Path, str], Any] = {}
"""The loggers of the runs in progress in this process, by (run directory, logger name)."""


def _logger_class(name: str) -> Any:
    module, cls = LOGGERS[name].split(":")
    return getattr(importlib.import_module(f"fomo_loggers.{module}"), cls)


def _loggers_of(run_dir: Path, loggers: list[str]) -> list[Any]:
    return [_open[(Path(run_dir), name)] for name in loggers if (Path(run_dir), name) in _open]


@hookimpl
def logger_names() -> list[str]:
    return sorted(LOGGERS)


@hookimpl
def logger_problems(spec: Any, loggers: list[str]) -> list[str]:
    found = []
    for name in loggers:
        if name in CHECKED:
            found += importlib.import_module(f"fomo_loggers.{CHECKED[name]}").problems(spec)
    return found


@hookimpl
def on_run_start(
    run_dir: Path, spec: Any, steps_per_task: int, resumed_from_task: int | None, loggers: list[str], process: ProcessInfo
) -> None:
    if not process.is_main:  # one process writes the logs of a multi-process run; the others open no logger
        return
    for name in loggers:
        if name in LOGGERS:
            key = (Path(run_dir), name)
            if key in _open:  # the same run started again in this process (after an interruption)
                _open.pop(key).close()
            _open[key] = _logger_class(name)(Path(run_dir), spec, steps_per_task, resumed_from_task)


@hookimpl
def on_task_start(run_dir: Path, task: int, concepts: list[str], loggers: list[str]) -> None:
    for logger in _loggers_of(run_dir, loggers):
        logger.task_start(task, concepts)


@hookimpl
def on_train_step(run_dir: Path, task: int, step: int, global_step: int, loss: float, lr: float, loggers: list[str]) -> None:
    for logger in _loggers_of(run_dir, loggers):
        logger.train_step(task, step, global_step, loss, lr)


@hookimpl
def on_task_end(run_dir: Path, task: int, steps: int, mean_loss: float, loggers: list[str]) -> None:
    for logger in _loggers_of(run_dir, loggers):
        logger.task_end(task, steps, mean_loss)


@hookimpl
def on_evaluation(run_dir: Path, record: dict[str, Any], loggers: list[str]) -> None:
    for logger in _loggers_of(run_dir, loggers):
        logger.evaluation(record)


@hookimpl
def on_run_end(run_dir: Path, summary: dict[str, Any], loggers: list[str]) -> None:
    for name in loggers:
        logger = _open.pop((Path(run_dir), name), None)
        if logger is not None:
            logger.run_end(summary)
            logger.close()
