"""A run's learning rate at every step, from its spec.toml, through the scheduler plugin (as ``fomo-host schedule`` computes it)."""

from __future__ import annotations

import copy

from ..errors import FomoError
from ..plugins import PluginHost
from ..spec_loading import build_spec
from .runs import RunResult


def run_schedule(run: RunResult, host: PluginHost) -> tuple[list[float], int]:
    """(lr at every global step, steps per task) of the run as it trained: its recorded steps per task and number of tasks."""
    from ..commands.schedule import stream_schedule

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
