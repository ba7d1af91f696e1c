"""A run's evaluations, tasks and training steps as CSV files, one row each, written as they happen."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from fomo_host.api import Logger, LoggerContext

from .params import CSVParams
from .scalars import tasks_done

LEADING_COLUMNS = ("task", "step", "samples_seen", "gflops", "maf", "train_loss", "A_KA", "A_ZS", "GM", "subset_fraction")
TASK_COLUMNS = ("task", "steps", "mean_loss", "num_concepts", "concepts")
STEP_COLUMNS = ("task", "step", "global_step", "loss", "lr")


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One evaluation record as flat columns: the aggregates, ``score/<dataset>`` and ``<dataset>/<metric>``.

    ``task`` counts tasks done (0 = the base model), as people count tasks.
    """
    row = {key: record.get(key, "") for key in LEADING_COLUMNS}
    row["task"] = tasks_done(record)
    compute = record.get("compute", {})
    row["gflops"], row["maf"] = compute.get("gflops", ""), compute.get("maf", "")
    row.update({f"score/{name}": value for name, value in sorted(record.get("scores", {}).items())})
    for dataset, values in sorted(record.get("metrics", {}).items()):
        row.update({f"{dataset}/{metric}": value for metric, value in sorted(values.items())})
    return row


class CSVLogger(Logger):
    """Evaluations, tasks and training steps as CSV files in the run directory (logs/).

    Writes under ``logs/`` (``params.directory``): ``evaluations.csv`` (one row per evaluation: results.jsonl flattened),
    ``tasks.csv`` (one row per trained task: steps, mean loss, concepts) and ``steps.csv`` (loss and learning rate every
    ``run.log_every_steps`` steps; ``params.steps = false`` leaves it out). Tasks count from 1, the base model is task 0.
    A resumed run drops the rows of the tasks it trains again."""

    def __init__(self, params: CSVParams, context: LoggerContext) -> None:
        self.directory = context.run_dir / params.directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.evaluations = self.directory / "evaluations.csv"
        self.tasks = self.directory / "tasks.csv"
        self.steps = self.directory / "steps.csv" if params.steps else None
        self._concepts: dict[int, list[str]] = {}
        resumed_from_task = context.resumed_from_task
        for path in (self.evaluations, self.tasks, self.steps):
            if path is None:
                continue
            if resumed_from_task is None:
                path.unlink(missing_ok=True)
            else:
                keep_up_to(path, resumed_from_task)

    def task_start(self, task: int, concepts: list[str]) -> None:
        self._concepts[task] = concepts

    def task_end(self, task: int, steps: int, mean_loss: float) -> None:
        concepts = self._concepts.pop(task, [])
        append_row(
            self.tasks,
            TASK_COLUMNS,
            {"task": task + 1, "steps": steps, "mean_loss": mean_loss, "num_concepts": len(concepts), "concepts": ";".join(concepts)},
        )

    def train_step(self, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
        if self.steps is None:
            return
        append_row(self.steps, STEP_COLUMNS, {"task": task + 1, "step": step, "global_step": global_step, "loss": loss, "lr": lr})

    def evaluation(self, record: dict[str, Any]) -> None:
        row = flatten(record)
        append_row(self.evaluations, tuple(row), row)

    def run_end(self, summary: dict[str, Any]) -> None:
        """summary.json has the end point."""

    def close(self) -> None:
        """Nothing stays open between rows."""


def append_row(path: Path, columns: tuple[str, ...], row: dict[str, Any]) -> None:
    """Append a row; the first row of a file writes the header, later rows follow that header's columns."""
    if path.is_file() and path.stat().st_size > 0:
        with open(path, newline="", encoding="utf-8") as handle:
            columns = tuple(next(csv.reader(handle)))
        unknown = set(row) - set(columns)
        if unknown:
            raise ValueError(f"{path}: a row has columns the header lacks: {sorted(unknown)}")
        header = False
    else:
        header = True
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        if header:
            writer.writeheader()
        writer.writerow(row)


def keep_up_to(path: Path, task: int) -> None:
    """Keep the rows of tasks up to ``task`` (counted from 1; 0 = the base model): a resume from the 0-based task index
    ``task`` trains and evaluates the later ones again."""
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    column = header.index("task")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(row for row in body if int(row[column]) <= task)
