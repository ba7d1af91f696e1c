"""A run directory as the reports see it: its records, its summary computed from them, its spec."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..results import RESULTS_FILE, SUMMARY_FILE, read_records, summarise

SPEC_FILE = "spec.toml"


@dataclass
class RunResult:
    """One run: ``summary`` is computed from the records, so a run still in progress can be reported too."""

    run_dir: Path
    label: str
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    spec: dict[str, Any] = field(default_factory=dict)
    """The resolved spec the run wrote (raw TOML tables); empty if it has none."""
    written_summary: dict[str, Any] = field(default_factory=dict)
    """``summary.json`` as the run wrote it at its end; empty while it runs."""

    @property
    def complete(self) -> bool:
        return bool(self.written_summary)

    @property
    def method(self) -> str:
        return str(self.spec.get("method", {}).get("name", "?"))

    @property
    def merger(self) -> str:
        return str(self.spec.get("merger", {}).get("name", "none"))

    @property
    def budget(self) -> dict[str, Any]:
        """The budget the run recorded (empty for runs recorded before budgets were)."""
        return dict(self.records[0].get("budget", {})) if self.records else {}

    @property
    def num_tasks(self) -> int:
        """Tasks in the stream: from summary.json when the run finished, else from its spec."""
        if self.complete:
            return int(self.written_summary["run"]["num_tasks"])
        return int(self.spec.get("data", {}).get("num_tasks", self.summary.get("tasks_done", 0)))


def load_run(run_dir: Path, label: str | None = None) -> RunResult:
    if not run_dir.is_dir():
        raise FomoError(f"{run_dir}: no such run directory")
    records = read_records(run_dir)
    if not records:
        raise FomoError(f"{run_dir}: no evaluations yet ({RESULTS_FILE} is missing or empty); is it a run directory?")
    spec_path = run_dir / SPEC_FILE
    spec = tomllib.loads(spec_path.read_text(encoding="utf-8")) if spec_path.is_file() else {}
    summary_path = run_dir / SUMMARY_FILE
    written = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    return RunResult(run_dir, label or run_dir.name, records, summarise(records), spec, written)


def load_runs(run_dirs: list[Path]) -> list[RunResult]:
    """Every run, labelled by its directory name (with its parent's where two names collide)."""
    names = [path.resolve().name for path in run_dirs]
    labels = [f"{path.resolve().parent.name}/{name}" if names.count(name) > 1 else name for path, name in zip(run_dirs, names, strict=True)]
    if len(set(labels)) < len(labels):
        duplicate = next(label for label in labels if labels.count(label) > 1)
        raise FomoError(f"run {duplicate!r} is given twice")
    return [load_run(path, label) for path, label in zip(run_dirs, labels, strict=True)]
