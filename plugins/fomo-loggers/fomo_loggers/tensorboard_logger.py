"""A run as TensorBoard scalars and text, through ``torch.utils.tensorboard.SummaryWriter``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TensorBoardLogger:
    """Writes event files under ``tensorboard/`` in the run directory.

    The step axis is the number of tasks done (0 for the base model), so runs whose methods train
    different numbers of steps per task (a budget in memory-adjusted FLOPs) line up. Scalars:
    ``aggregate/A_KA``, ``aggregate/A_ZS``, ``aggregate/GM``, ``score/<dataset>``,
    ``metric/<dataset>/<metric>``, ``compute/gflops``, ``compute/maf``, ``train/mean_loss``;
    text: the spec and each task's concepts. A resumed run purges the events of the tasks it trains again.
    """

    def __init__(self, run_dir: Path, spec: Any, resumed_from_task: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge_step = None if resumed_from_task is None else resumed_from_task + 1
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge_step)
        if resumed_from_task is None:
            toml = spec.to_toml()
            self.writer.add_text("spec", "\n".join("    " + line for line in toml.splitlines()), 0)

    def task_start(self, task: int, concepts: list[str]) -> None:
        self.writer.add_text("task/concepts", ", ".join(concepts), task + 1)

    def task_end(self, task: int, steps: int, mean_loss: float) -> None:
        self.writer.add_scalar("train/mean_loss", mean_loss, task + 1)
        self.writer.add_scalar("train/steps", steps, task + 1)

    def evaluation(self, record: dict[str, Any]) -> None:
        step = record["task"] + 1
        for key in ("A_KA", "A_ZS", "GM"):
            self.writer.add_scalar(f"aggregate/{key}", record[key], step)
        for name, value in record.get("scores", {}).items():
            self.writer.add_scalar(f"score/{name}", value, step)
        for dataset, values in record.get("metrics", {}).items():
            for metric, value in values.items():
                self.writer.add_scalar(f"metric/{dataset}/{metric}", value, step)
        for key, value in record.get("compute", {}).items():
            self.writer.add_scalar(f"compute/{key}", value, step)
        # an interrupted run keeps what it logged
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
