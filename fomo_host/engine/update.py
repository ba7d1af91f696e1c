"""Continuing a finished run with new data or more tasks of its stream, in the same run directory (``fomo-host update``).

The update is a resume with a longer stream: the run's last checkpoint (weights,
method, merger and optimizer states, records, counters) continues under the update's
spec, so task numbers, the buffer, the merge history and the budget ledger carry on,
and a 2-task run updated with 2 more tasks trains exactly what a 4-task run does
(with a scheduler that does not need the number of tasks). Everything the update
is given is checked, and everything it builds is built, before anything is written:
a refused update leaves the run as it was.
"""

from __future__ import annotations

import copy
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..components import needs_horizon
from ..errors import FomoError, SpecError
from ..plugins import PluginHost
from ..progress import Reporter
from ..registry import Registry
from ..resolve import resolve_component
from ..results import SUMMARY_FILE, read_records, write_text_atomic
from ..run_directory import SPEC_FILE, has_checkpoint, path_kind
from ..spec import RunSpec, StreamUpdate, read_toml
from ..spec_loading import build_spec, load_spec
from ..update_history import pending_update, read_updates, update_folder, write_updates
from .run_checkpoints import recorded_steps_per_task
from .setup import Setup

DATA_KEYS = ("sources", "pretraining", "adaptation", "zero_shot")
"""What an update's data file may set under [data]: new sources, and datasets added to the run's lists."""


@dataclass
class UpdatePlan:
    """A checked update: the spec it trains with, and what it adds."""

    number: int
    spec: RunSpec
    first_task: int
    new_sources: list[str]
    new_adaptation: list[str]
    data_text: str | None


# ----------------------------------------------------------------------------- checks


def check_run_directory(run_dir: Path) -> None:
    """A run directory whose stream has finished (an interrupted run is resumed, not updated)."""
    if path_kind(run_dir, "update") != "directory":
        raise FomoError(f"{run_dir}: no such run directory")
    if not (run_dir / SPEC_FILE).is_file():
        raise FomoError(f"{run_dir}: not a run directory (no {SPEC_FILE})")
    if not (run_dir / SUMMARY_FILE).is_file():
        raise FomoError(f"{run_dir}: the run has not finished; finish it first: fomo-host run --resume {run_dir}")
    if not has_checkpoint(run_dir):
        raise FomoError(f"{run_dir}: no checkpoint to continue from (checkpoints/ holds none); the run cannot be updated")


def horizon_free_names(registry: Registry) -> list[str]:
    """Installed schedulers that declare they do not need the number of tasks (those whose defaults build)."""
    names = []
    for name in registry.names("scheduler"):
        try:
            component = registry.get("scheduler", name)
            scheduler = component.factory(component.validate_params({}))
        except Exception:  # noqa: BLE001 (a scheduler whose defaults do not build cannot be suggested)
            continue
        if not needs_horizon(scheduler):
            names.append(name)
    return sorted(names, key=lambda name: ("infinite" not in name, name))


def refuse_horizon_bound(run_dir: Path, spec: RunSpec, registry: Registry, what: str) -> None:
    scheduler = resolve_component(registry, "scheduler", spec.scheduler, "scheduler").build()
    if not needs_horizon(scheduler):
        return
    alternatives = horizon_free_names(registry)
    suggestion = f"; start the run with a horizon-free scheduler, e.g. scheduler.name = {alternatives[0]!r}" if alternatives else ""
    raise FomoError(
        f"{run_dir}: {what} scheduler {spec.scheduler.name!r} needs the number of tasks up front (its horizon), "
        f"so the run cannot take more tasks{suggestion}"
    )


def read_data_file(path: Path) -> dict[str, Any]:
    """An update's data file: ``[[data.sources]]`` and dataset lists under [data], an optional [release]."""
    raw = read_toml(path)
    unknown = [key for key in raw if key not in ("data", "release")]
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise FomoError(f"{path}: data must be a table")
    unknown += [f"data.{key}" for key in data if key not in DATA_KEYS]
    if unknown:
        raise FomoError(
            f"{path}: {unknown[0]} does not belong in an update's data file (it takes [[data.sources]], data.pretraining, "
            "data.adaptation, data.zero_shot and [release]); change other settings with --set"
        )
    for key in DATA_KEYS:
        if key in data and not isinstance(data[key], list):
            raise FomoError(f"{path}: data.{key} must be an array")
    if not data.get("sources") and not any(data.get(key) for key in DATA_KEYS) and "release" not in raw:
        raise FomoError(f"{path}: no new data (no [[data.sources]] and no datasets listed)")
    return raw


def merged_raw_spec(run_raw: dict[str, Any], data_file: dict[str, Any], records: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """The run's spec tables with the data file's sources appended and its dataset lists added to the run's."""
    raw = copy.deepcopy(run_raw)
    data = raw.setdefault("data", {})
    added = data_file.get("data", {})
    data["sources"] = [*data.get("sources", []), *added.get("sources", [])]
    last_groups = (records[-1].get("groups") or {}) if records else {}
    for key in ("pretraining", "adaptation", "zero_shot"):
        if not added.get(key):
            continue
        current = data.get(key)
        if current is None:
            if key == "pretraining":
                raise FomoError(
                    f"{source}: data.pretraining: the run picks its pool by role; list the run's pool in data.pretraining "
                    "with --set to add to it"
                )
            current = list(last_groups.get(key, []))  # the sets the run evaluated as this group
        data[key] = [*current, *(name for name in added[key] if name not in current)]
    if "release" in data_file:
        raw["release"] = {**raw.get("release", {}), **data_file["release"]}
    return raw


# ----------------------------------------------------------------------------- planning


def plan_update(
    host: PluginHost,
    run_dir: Path,
    data_path: Path | None,
    tasks: int | None,
    overrides: list[str],
) -> tuple[UpdatePlan, Any]:
    """Check the update and build everything it trains with; returns the plan and the built setup. Writes nothing.

    The builds report nothing (the run built the same before: its base model is cached), so a refusal is one line.
    """
    from .setup import build_model_and_data, default_cache_dir, prepare

    reporter = Reporter(enabled=False)

    if tasks is not None and tasks < 1:
        raise FomoError(f"--tasks {tasks}: give at least 1")
    if data_path is None and tasks is None and not overrides:
        raise FomoError("nothing to update: give new data (--data NEW.toml) and/or more tasks of the run's stream (--tasks K)")
    check_run_directory(run_dir)
    records = read_records(run_dir)
    if not records or records[-1]["task"] < 0:
        raise FomoError(f"{run_dir}: the run has trained no task; finish it first: fomo-host run --resume {run_dir}")
    run_spec = load_spec(run_dir / SPEC_FILE, (), host.registry)
    refuse_horizon_bound(run_dir, run_spec, host.registry, "the run's")
    trained = records[-1]["task"] + 1
    data_file = read_data_file(data_path) if data_path is not None else {"data": {}}
    raw = merged_raw_spec(read_toml(run_dir / SPEC_FILE), data_file, records, str(data_path))
    source = str(data_path) if data_path is not None else "update"
    candidate = build_spec(raw, overrides, host.registry, source=source)
    refuse_horizon_bound(run_dir, candidate, host.registry, "the update's")

    # which adaptation datasets are new: those the run did not evaluate as adaptation sets
    before = set((records[-1].get("groups") or {}).get("adaptation", []))
    built = build_model_and_data(host, candidate, reporter, default_cache_dir())
    new_adaptation = [d.name for d in built.data.adaptation if d.name not in before]
    del built
    spec_raw = candidate.model_dump(mode="json")
    if new_adaptation:
        spec_raw["data"]["updates"] = [
            *spec_raw["data"]["updates"],
            StreamUpdate(adaptation=new_adaptation, num_tasks=tasks or 1).model_dump(),
        ]
        spec_raw["data"]["train_tasks"] = None
    elif tasks is None:
        raise FomoError(
            "the update brings no new adaptation dataset, so no new tasks; give --tasks K to train K more tasks of the run's stream"
        )
    else:
        spec_raw["data"]["train_tasks"] = trained + tasks
    spec = build_spec(spec_raw, (), host.registry, source=source)
    try:
        setup = prepare(host, spec, reporter)
    except SpecError as exc:
        if "data.train_tasks is" in str(exc) and not new_adaptation:
            raise FomoError(f"--tasks {tasks}: {run_dir}'s stream has fewer than {tasks} tasks left; bring new data with --data") from None
        raise
    check_same_past(run_dir, records, setup, trained)
    new_sources = [ref.name for ref in spec.data.sources[len(run_spec.data.sources) :]]
    number = len(read_updates(run_dir)) + 1
    text = data_path.read_text(encoding="utf-8") if data_path is not None else None
    return UpdatePlan(number, spec, trained, new_sources, new_adaptation, text), setup


def check_same_past(run_dir: Path, records: list[dict[str, Any]], setup: Setup, trained: int) -> None:
    """The update must train on from the same stream and budget: the tasks done stay the tasks done (the budget as a
    resume checks it, from the run's records)."""
    recorded_steps = recorded_steps_per_task(records)
    if recorded_steps is not None and recorded_steps != setup.steps_per_task:
        raise FomoError(
            f"{run_dir}: the run trained {recorded_steps} steps per task and the update would train {setup.steps_per_task}; "
            "an update keeps the run's budget (leave budget.* as it is)"
        )
    if len(setup.tasks) <= trained:
        raise FomoError(f"{run_dir}: the update adds no task to the {trained} trained; keep the run's data settings")
    for record in records:
        task = record["task"]
        if task < 0 or "task_datasets" not in record:
            continue
        now = dict(Counter(concept.dataset for concept in setup.tasks[task]))
        if now != record["task_datasets"]:
            raise FomoError(
                f"{run_dir}: with the update's data, task {task + 1} would hold other concepts than it trained "
                f"({now} instead of {record['task_datasets']}); keep the run's data settings, add new data as new sources"
            )


# ----------------------------------------------------------------------------- running


def record_start(run_dir: Path, plan: UpdatePlan, run_spec_text: str, from_fingerprint: str, tasks_total: int) -> None:
    """Keep the spec history and mark the update started; the run's spec.toml becomes the update's last."""
    first = update_folder(run_dir, 0) / SPEC_FILE
    if not first.is_file():
        first.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(first, run_spec_text)
    folder = update_folder(run_dir, plan.number)
    folder.mkdir(parents=True, exist_ok=True)
    spec_text = plan.spec.to_toml()
    write_text_atomic(folder / SPEC_FILE, spec_text)
    if plan.data_text is not None:
        write_text_atomic(folder / "data.toml", plan.data_text)
    entries = [entry for entry in read_updates(run_dir) if entry["update"] != plan.number]
    entries.append(
        {
            "update": plan.number,
            "status": "started",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tasks": [plan.first_task + 1, tasks_total],
            "new_sources": plan.new_sources,
            "new_adaptation": plan.new_adaptation,
            "from_fingerprint": from_fingerprint,
            "spec_fingerprint": plan.spec.fingerprint(),
            "spec": f"{folder.relative_to(run_dir)}/{SPEC_FILE}",
        }
    )
    write_updates(run_dir, entries)
    write_text_atomic(run_dir / SPEC_FILE, spec_text)


def first_release(run_dir: Path, spec: RunSpec, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Release 1 (the run's own end), made when the run is first updated."""
    from ..releases import make_release, read_releases

    if read_releases(run_dir):
        return None
    return make_release(run_dir, spec, records, update=0, first_task=0)


def finish_pending_update(run_dir: Path, spec: RunSpec, records: list[dict[str, Any]], line: Any) -> None:
    """At the end of a run: where it was an update (started, with this spec), release it and mark it finished."""
    from ..releases import make_release

    pending = pending_update(run_dir)
    if pending is None or pending["spec_fingerprint"] != spec.fingerprint():
        return
    entry = make_release(run_dir, spec, records, update=pending["update"], first_task=pending["tasks"][0] - 1)
    entries = read_updates(run_dir)
    for item in entries:
        if item["update"] == pending["update"]:
            item.update(status="finished", finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), release=entry["release"])
    write_updates(run_dir, entries)
    if entry["published"]:
        line(release_line(run_dir, entry))
    else:
        print(entry["held_because"], file=sys.stderr)  # even with --quiet: the release is not deployable


def release_line(run_dir: Path, entry: dict[str, Any]) -> str:
    return f"release v{entry['release']}: A_KA {entry['A_KA']:.4f}  A_ZS {entry['A_ZS']:.4f}  ({run_dir / entry['weights']})"
