"""A run in MLflow, through ``MlflowClient``, configured by the logger's params (MLflow's environment variables as fallbacks)."""

from __future__ import annotations

import os
import time
from typing import Any

from fomo_host.api import Logger, LoggerContext

from .params import DEFAULT_EXPERIMENT, MLflowParams
from .scalars import evaluation_scalars, final_scalars, flat_spec, tasks_done

RUN_ID_FILE = "mlflow-run-id"
PARAM_LENGTH = 500
"""MLflow's shortest limit on a parameter value among its stores; longer values (long lists) are cut."""


class MLflowLogger(Logger):
    """One MLflow run per fomo-host run (tracking URI and experiment as params).

    Tracking URI and experiment from the params (each unset one from ``MLFLOW_TRACKING_URI``, else MLflow's default
    store, and ``MLFLOW_EXPERIMENT_NAME``, else ``fomo-host``). Parameters: the resolved spec as dotted keys; metrics:
    every evaluation at step = tasks done (0 = the base model), ``train/loss`` and ``train/lr`` at step = the
    optimizer steps done, the final values at the end. A resumed run continues the same MLflow run.
    """

    def __init__(self, params: MLflowParams, context: LoggerContext) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        run_dir, spec, steps_per_task, resumed_from_task = context.run_dir, context.spec, context.steps_per_task, context.resumed_from_task
        self.client = MlflowClient(tracking_uri=params.tracking_uri)  # None: MLflow reads MLFLOW_TRACKING_URI, else its default
        id_file = run_dir / "logs" / RUN_ID_FILE
        id_file.parent.mkdir(parents=True, exist_ok=True)
        if resumed_from_task is not None and id_file.is_file():
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = params.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment is not None else self.client.create_experiment(name)
        tags = {"fomo.run_dir": str(run_dir.resolve()), "fomo.method": spec.method.name, "fomo.merger": spec.merger.name}
        run = self.client.create_run(experiment_id, run_name=spec.run.label or run_dir.name, tags=tags)
        self.run_id = run.info.run_id
        id_file.write_text(self.run_id)
        params = {**flat_spec(spec), "steps_per_task": str(steps_per_task), "spec_fingerprint": spec.fingerprint()}
        batch = [Param(key, value[:PARAM_LENGTH]) for key, value in sorted(params.items())]
        for start in range(0, len(batch), 100):  # MLflow takes at most 100 parameters per call
            self.client.log_batch(self.run_id, params=batch[start : start + 100])

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, value, stamp, step) for key, value in values.items()]
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per call
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def task_start(self, task: int, concepts: list[str]) -> None:
        """The concepts are in the run directory (and the CSV logger); MLflow gets the numbers."""

    def task_end(self, task: int, steps: int, mean_loss: float) -> None:
        self._log({"task/mean_loss": mean_loss, "task/steps": float(steps)}, task + 1)

    def train_step(self, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
        self._log({"train/loss": loss, "train/lr": lr}, global_step)

    def evaluation(self, record: dict[str, Any]) -> None:
        self._log(evaluation_scalars(record), tasks_done(record))

    def run_end(self, summary: dict[str, Any]) -> None:
        tasks = int(summary.get("tasks_done", 0))
        self._log(final_scalars(summary), tasks)
        self.client.set_terminated(self.run_id, status="FINISHED")
        self._finished = True

    def close(self) -> None:
        if not getattr(self, "_finished", False):
            self.client.set_terminated(self.run_id, status="KILLED")
