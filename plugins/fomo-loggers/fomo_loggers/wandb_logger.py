"""A run in Weights & Biases (``wandb``), configured by the logger's params (W&B's environment variables as fallbacks)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from fomo_host.api import Logger, LoggerContext

from .params import DEFAULT_PROJECT, WandbParams
from .scalars import evaluation_scalars, final_scalars, tasks_done

RUN_ID_FILE = "wandb-run-id"
EVALUATION_PREFIXES = ("aggregate", "score", "metric", "compute", "progress")


class WandbLogger(Logger):
    """One Weights & Biases run per fomo-host run (project, entity, mode as params).

    Written under the run directory (``RUN_DIR/wandb``).

    Project, entity and mode from the params (each unset one from ``WANDB_PROJECT`` (else ``fomo-host``),
    ``WANDB_ENTITY`` and ``WANDB_MODE``; ``offline`` logs locally for a later ``wandb sync``). The config is the
    resolved spec; evaluations are logged against ``tasks_done`` (0 = the base model), the training loss and learning
    rate against ``global_step``; the summary holds the final and mean A_KA, A_ZS and GM. A resumed run continues the same W&B run.
    """

    def __init__(self, params: WandbParams, context: LoggerContext) -> None:
        import wandb

        run_dir, spec, steps_per_task, resumed_from_task = context.run_dir, context.spec, context.steps_per_task, context.resumed_from_task
        id_file = run_dir / "logs" / RUN_ID_FILE
        id_file.parent.mkdir(parents=True, exist_ok=True)
        run_id = id_file.read_text().strip() if resumed_from_task is not None and id_file.is_file() else secrets.token_hex(6)
        config = spec.model_dump(mode="json")
        config["steps_per_task"] = steps_per_task
        self.run = wandb.init(
            project=params.project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            entity=params.entity,  # None: W&B reads WANDB_ENTITY, else the account's default
            mode=params.effective_mode(),
            name=spec.run.label or run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=config,
            tags=[spec.method.name, spec.merger.name],
            # console capture would interleave with the progress display; the run directory keeps the output
            settings=wandb.Settings(reinit="create_new", console="off"),
        )
        id_file.write_text(run_id)
        self.run.define_metric("tasks_done")
        for prefix in (*EVALUATION_PREFIXES, "task"):
            self.run.define_metric(f"{prefix}/*", step_metric="tasks_done")
        self.run.define_metric("global_step")
        self.run.define_metric("train/*", step_metric="global_step")

    def task_start(self, task: int, concepts: list[str]) -> None:
        """The concepts are in the run directory (and the CSV logger); W&B gets the numbers."""

    def task_end(self, task: int, steps: int, mean_loss: float) -> None:
        self.run.log({"tasks_done": task + 1, "task/mean_loss": mean_loss, "task/steps": steps})

    def train_step(self, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
        self.run.log({"global_step": global_step, "train/loss": loss, "train/lr": lr, "train/task": task + 1})

    def evaluation(self, record: dict[str, Any]) -> None:
        self.run.log({"tasks_done": tasks_done(record), **evaluation_scalars(record)})

    def run_end(self, summary: dict[str, Any]) -> None:
        self.run.summary.update(final_scalars(summary))

    def close(self) -> None:
        self.run.finish()
