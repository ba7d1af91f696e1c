"""The learning rate at every step of a spec's stream, through its scheduler plugin: what ``fomo-host schedule`` prints and
what a report draws for a run (from its spec.toml)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..errors import FomoError
from ..plugins import PluginHost
from ..resolve import resolve_component
from ..spec import RunSpec
from ..spec_loading import build_spec
from .runs import RunResult


@dataclass(frozen=True)
class ScheduledStep:
    task: int
    step: int
    global_step: int
    lr: float


def planned_tasks(spec: RunSpec) -> int:
    """The tasks a spec trains: data.num_tasks, those of its updates, cut at data.train_tasks."""
    total = spec.data.num_tasks + sum(update.num_tasks for update in spec.data.updates)
    return min(total, spec.data.train_tasks) if spec.data.train_tasks is not None else total


def stream_schedule(spec: RunSpec, host: PluginHost, num_tasks: int | None = None) -> list[ScheduledStep]:
    """lr = optimizer.lr x scheduler factor at every step of every task (num_tasks = data.num_tasks).

    Steps per task come from the spec's budget: a budget in samples or steps needs nothing built;
    one in memory-adjusted FLOPs needs the method's measured step cost (measured once on the meta
    device, then cached: see ``fomo-host budget``).
    """
    from ..engine.budget import steps_per_task
    from ..engine.setup import default_cache_dir

    scheduler = resolve_component(host.registry, "scheduler", spec.scheduler, "scheduler").build()
    steps = steps_per_task(host, spec, default_cache_dir())
    num_tasks = num_tasks or planned_tasks(spec)
    rows = []
    for task in range(num_tasks):
        for step in range(steps):
            factor = float(scheduler(step, steps, task, num_tasks))
            rows.append(ScheduledStep(task, step, task * steps + step, spec.optimizer.lr * factor))
    return rows


def run_schedule(run: RunResult, host: PluginHost) -> tuple[list[float], int]:
    """(lr at every global step, steps per task) of the run as it trained: its recorded steps per task and number of tasks."""
    if not run.spec:
        raise FomoError(f"{run.run_dir}: no spec.toml to read the scheduler from")
    steps = run.budget.get("steps_per_task") or run.written_summary.get("run", {}).get("steps_per_task")
    raw = copy.deepcopy(run.spec)
    if steps is not None:
        # the steps the run trained (a budget in MAF was resolved when it started), not a new measurement
        raw["budget"] = {"steps_per_task": int(steps)}
    spec = build_spec(raw, source=str(run.run_dir / "spec.toml"))
    # the tasks it trained: data.num_tasks, or more where updates continued it
    rows = stream_schedule(spec, host, run.num_tasks)
    return [row.lr for row in rows], len(rows) // run.num_tasks
