"""A run's evaluations and tasks as CSV files, one row each, written as they happen."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

LEADING_COLUMNS = ("task", "step", "samples_seen", "gflops", "maf", "train_loss", "A_KA", "A_ZS", "GM", "subset_fraction")
TASK_COLUMNS = ("task", "steps", "mean_loss", "num_concepts", "concepts")


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One evaluation record as flat columns: the aggregates, ``score/<dataset>`` and ``<dataset>/<metric>``."""
    row = {key: record.get(key, "") for key in LEADING_COLUMNS}
    compute = record.get("compute", {})
    row["gflops"], row["maf"] = compute.get("gflops", ""), compute.get("maf", "")
    row.update({f"score/{name}": value for name, value in sorted(record.get("scores", {}).items())})
    for dataset, values in sorted(record.get("metrics", {}).items()):
        row.update({f"{dataset}/{metric}": value for metric, value in sorted(values.items())})
    return row


class CSVLogger:
    """Writes ``logs/evaluations.csv`` (one row per evaluation: results.jsonl flattened) and ``logs/tasks.csv``
    (one row per trained task: steps, mean loss, concepts). A resumed run drops the rows of the tasks it trains again."""

    def __init__(self, run_dir: Path, resumed_from_task: int | None) -> None:
        self.directory = run_dir / "logs"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.evaluations = self.directory / "evaluations.csv"
        self.tasks = self.directory / "tasks.csv"
        self._concepts: dict[int, list[str]] = {}
        if resumed_from_task is None:
            self.evaluations.unlink(missing_ok=True)
            self.tasks.unlink(missing_ok=True)
        else:
            keep_before(self.evaluations, resumed_from_task)
            keep_before(self.tasks, resumed_from_task)

    def task_start(self, task: int, concepts: list[str]) -> None:
        self._concepts[task] = concepts

    def task_end(self, task: int, steps: int, mean_loss: float) -> None:
        concepts = self._concepts.pop(task, [])
        append_row(
            self.tasks,
            TASK_COLUMNS,
            {"task": task, "steps": steps, "mean_loss": mean_loss, "num_concepts": len(concepts), "concepts": ";".join(concepts)},
        )

    def evaluation(self, record: dict[str, Any]) -> None:
        row = flatten(record)
        append_row(self.evaluations, tuple(row), row)

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


def keep_before(path: Path, task: int) -> None:
    """Drop the rows of tasks >= ``task`` (a resume trains and evaluates them again)."""
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
        writer.writerows(row for row in body if int(row[column]) < task)
