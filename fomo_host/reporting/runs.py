"""A run directory as the reports see it: its records, its summary computed from them, its spec."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..results import RESULTS_FILE, SUMMARY_FILE, summarise
from ..run_directory import CHECKPOINT_DIR, SPEC_FILE
from ..run_records import read_run_records
from ..stored import Summary, validated


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
    def settings(self) -> dict[str, Any]:
        """What distinguishes runs in a study, from the run's spec: method, merger, learning rate, schedule, mixture, budget, seed."""
        spec = self.resolved_spec()
        mixture = spec.get("data", {}).get("mixture", {})
        budget = {key: value for key, value in spec.get("budget", {}).items() if key != "memory_measure" and value is not None}
        scheduler = spec.get("scheduler", {})
        return {
            "method": _component(spec.get("method", {}), "?"),
            "merger": _component(spec.get("merger", {}), "none"),
            "lr": spec.get("optimizer", {}).get("lr"),
            "schedule": _component(scheduler, "?"),
            "mixture": "/".join(f"{mixture[key]:g}" for key in ("pretraining", "update", "buffer") if key in mixture),
            "budget": ", ".join(f"{key}={value:,}" if isinstance(value, int) else f"{key}={value:g}" for key, value in budget.items()),
            "seed": spec.get("run", {}).get("seed"),
        }

    def resolved_spec(self) -> dict[str, Any]:
        """The spec's tables with every default filled in (as the run used them); the raw tables where they do not validate."""
        from ..spec_loading import build_spec

        try:
            return build_spec(self.spec).model_dump(mode="json")
        except FomoError:
            return self.spec

    @property
    def paths(self) -> dict[str, Path]:
        """The run's files: spec, results, summary, the checkpoints folder, and its kept deployed weights by task (0 = base model)."""
        from ..deployed import deployed_path, kept_tasks

        paths = {name: self.run_dir / file for name, file in (("spec", SPEC_FILE), ("results", RESULTS_FILE), ("summary", SUMMARY_FILE))}
        paths["checkpoints"] = self.run_dir / CHECKPOINT_DIR
        paths.update({f"weights/task-{task}": deployed_path(self.run_dir, task) for task in kept_tasks(self.run_dir)})
        return paths

    def to_pandas(self) -> Any:
        """The evaluations as a pandas DataFrame, one row per evaluation (see :func:`records_frame`)."""
        return records_frame([self])

    def export(self, out: Path | str, task: int | None = None, force: bool = False) -> Path:
        """Write the weights deployed after ``task`` (1-based; 0 = base model; default: the last) as a plain open_clip model
        (``fomo-host export``); returns the weights file."""
        from ..export import export_run

        return export_run(self.run_dir, Path(out), task, force).weights

    @property
    def num_tasks(self) -> int:
        """Tasks in the stream: from summary.json when the run finished, else from its spec."""
        if self.complete:
            return int(self.written_summary["run"]["num_tasks"])
        return int(self.spec.get("data", {}).get("num_tasks", self.summary.get("tasks_done", 0)))


def _component(ref: dict[str, Any], default: str) -> str:
    name = str(ref.get("name", default))
    params = ref.get("params") or {}
    return name + (" (" + ", ".join(f"{key}={value}" for key, value in params.items()) + ")" if params else "")


def records_frame(runs: list[RunResult]) -> Any:
    """One row per evaluation of every run: ``run`` (its label), ``task`` (tasks done: 0 = base model, then 1, 2, ...),
    ``step``, ``samples_seen``, ``subset_fraction``, ``A_KA``, ``A_ZS``, ``GM``, ``train_loss``, one ``score/<dataset>``
    column per dataset, and the run's settings (method, merger, lr, schedule, mixture, budget, seed) and directory."""
    try:
        import pandas
    except ImportError:
        raise FomoError("records as a DataFrame need pandas: pip install pandas (Run.records has them as a list)") from None
    rows = []
    for run in runs:
        settings = run.settings
        for record in run.records:
            row: dict[str, Any] = {"run": run.label, "task": record["task"] + 1}
            row.update({key: record.get(key) for key in ("step", "samples_seen", "subset_fraction", "A_KA", "A_ZS", "GM", "train_loss")})
            row.update({f"score/{name}": value for name, value in record.get("scores", {}).items()})
            row.update(settings)
            row["run_dir"] = str(run.run_dir)
            rows.append(row)
    return pandas.DataFrame(rows)


def load_run(run_dir: Path, label: str | None = None) -> RunResult:
    """A run directory, finished or in progress, labelled ``label``, else by its spec's run.label, else by its directory name."""
    if not run_dir.is_dir():
        raise FomoError(f"{run_dir}: no such run directory")
    summary_path = run_dir / SUMMARY_FILE
    try:
        written = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    except (UnicodeDecodeError, ValueError):
        raise FomoError(f"{summary_path} is damaged (not JSON); delete it and the report uses {RESULTS_FILE} alone") from None
    if not isinstance(written, dict):
        raise FomoError(f"{summary_path} is damaged (not a run summary); delete it and the report uses {RESULTS_FILE} alone")
    summary = validated(Summary, written, summary_path) if written else None
    # the one reader of a run's records: checked against summary.json and the checkpoint, rebuilt where lines were lost
    records = read_run_records(run_dir, summary)
    if not records:
        raise FomoError(f"{run_dir}: no evaluations yet ({RESULTS_FILE} is missing or empty); is it a run directory?")
    spec_path = run_dir / SPEC_FILE
    try:
        spec = tomllib.loads(spec_path.read_text(encoding="utf-8")) if spec_path.is_file() else {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FomoError(f"{spec_path} is damaged: {exc}") from None
    label = label or spec.get("run", {}).get("label") or run_dir.name
    return RunResult(run_dir, label, records, summarise(records), spec, written)


def load_runs(run_dirs: list[Path], labels: list[str | None] | None = None) -> list[RunResult]:
    """Every run, labelled as given, else by its spec's run.label, else by its directory name; a label two runs share
    gets the directory name (or its parent's) added, so every run keeps its own legend entry."""
    resolved = [path.resolve() for path in run_dirs]
    if len(set(resolved)) < len(resolved):
        duplicate = next(path for path in resolved if resolved.count(path) > 1)
        raise FomoError(f"run {duplicate.name!r} is given twice")
    runs = [load_run(path, label) for path, label in zip(run_dirs, labels or [None] * len(run_dirs), strict=True)]
    names = [path.name for path in resolved]
    directory_labels = [f"{path.parent.name}/{path.name}" if names.count(path.name) > 1 else path.name for path in resolved]
    taken = [run.label for run in runs]
    for run, directory in zip(runs, directory_labels, strict=True):
        if taken.count(run.label) > 1:
            run.label = directory if run.label == run.run_dir.name else f"{run.label} ({directory})"
    return runs
