"""Registers the loggers (CSV, TensorBoard, Weights & Biases, MLflow): a run uses one when its spec lists it in
``run.loggers``. A logger's module, and the tracker library it uses, is imported only when a run builds it."""

from __future__ import annotations

from fomo_host.api import LoggerRegister, hookimpl

from .params import CSVParams, MLflowParams, TensorBoardParams, WandbParams


@hookimpl
def register_loggers(register: LoggerRegister) -> None:
    register(
        name="csv",
        factory="fomo_loggers.csv_logger:CSVLogger",
        params=CSVParams,
        description="Evaluations, tasks and training steps as CSV files in the run directory (logs/).",
    )
    register(
        name="tensorboard",
        factory="fomo_loggers.tensorboard_logger:TensorBoardLogger",
        params=TensorBoardParams,
        description="TensorBoard event files in the run directory (tensorboard/): scalars by tasks done, steps by optimizer step.",
    )
    register(
        name="wandb",
        factory="fomo_loggers.wandb_logger:WandbLogger",
        params=WandbParams,
        description="One Weights & Biases run per fomo-host run (project, entity, mode as params).",
    )
    register(
        name="mlflow",
        factory="fomo_loggers.mlflow_logger:MLflowLogger",
        params=MLflowParams,
        description="One MLflow run per fomo-host run (tracking URI and experiment as params).",
    )
