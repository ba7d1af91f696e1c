"""``fomo-host schedule``: the learning rate of every step of a spec's stream, without training or building data."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from ..errors import FomoError
from ..plugins import PluginHost
from ..resolve import resolve_component
from ..spec import RunSpec, load_spec
from .common import add_spec_arguments, load_host


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "schedule",
        help="show the learning rate of every step of the stream (spec's scheduler, budget and data.num_tasks)",
    )
    add_spec_arguments(parser)
    parser.add_argument(
        "--csv",
        action="store_true",
        help="print every step as CSV: task,step,global_step,lr (counted from 1, as the loggers' steps.csv counts them)",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="draw the learning rate over the whole stream into this image")
    parser.set_defaults(handler=command_schedule)


@dataclass(frozen=True)
class ScheduledStep:
    task: int
    step: int
    global_step: int
    lr: float


def scheduler_params(spec: RunSpec, host: PluginHost) -> BaseModel:
    """The scheduler's validated params; only these are checked, so no model or dataset plugin is needed."""
    return resolve_component(host.registry, "scheduler", spec.scheduler, "scheduler").params


def stream_schedule(spec: RunSpec, host: PluginHost) -> list[ScheduledStep]:
    """lr = optimizer.lr x scheduler factor at every step of every task (num_tasks = data.num_tasks).

    Steps per task come from the spec's budget: a budget in samples or steps needs nothing built;
    one in memory-adjusted FLOPs needs the method's measured step cost (measured once on the meta
    device, then cached: see ``fomo-host budget``).
    """
    from ..budget import steps_per_task
    from ..engine.setup import default_cache_dir

    scheduler = resolve_component(host.registry, "scheduler", spec.scheduler, "scheduler").build()
    steps = steps_per_task(host, spec, default_cache_dir())
    num_tasks = spec.data.num_tasks
    rows = []
    for task in range(num_tasks):
        for step in range(steps):
            factor = float(scheduler(step, steps, task, num_tasks))
            rows.append(ScheduledStep(task, step, task * steps + step, spec.optimizer.lr * factor))
    return rows


def command_schedule(args: argparse.Namespace) -> int:
    host = load_host(quiet=args.csv)
    spec = load_spec(Path(args.spec), list(args.set or []))
    rows = stream_schedule(spec, host)
    if args.csv:
        write_csv(rows)
    else:
        print_summary(spec, rows)
    if args.plot:
        draw(spec, scheduler_params(spec, host), rows, Path(args.plot))
        if not args.csv:
            print(f"plot: {args.plot}")
    return 0


def write_csv(rows: list[ScheduledStep]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    try:
        writer.writerow(["task", "step", "global_step", "lr"])
        for row in rows:
            # tasks and steps as people (and logs/steps.csv) count them: the first step of the first task is 1, 1, 1
            writer.writerow([row.task + 1, row.step + 1, row.global_step + 1, repr(row.lr)])
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (head, less) stopped early: not an error. Point stdout at devnull so
        # the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def print_summary(spec: RunSpec, rows: list[ScheduledStep]) -> None:
    from rich.console import Console
    from rich.table import Table

    num_tasks = spec.data.num_tasks
    steps = len(rows) // num_tasks
    print(f"scheduler {spec.scheduler.name}: {num_tasks} tasks x {steps} steps; lr = optimizer.lr {spec.optimizer.lr:g} x factor")
    table = Table()
    for column in ("task", "first lr", "peak lr", "at step", "last lr", "mean lr"):
        table.add_column(column, justify="right")
    for task in range(num_tasks):
        task_rows = rows[task * steps : (task + 1) * steps]
        top = max(task_rows, key=lambda row: row.lr)
        mean = sum(row.lr for row in task_rows) / len(task_rows)
        table.add_row(str(task + 1), f"{task_rows[0].lr:.3e}", f"{top.lr:.3e}", str(top.step), f"{task_rows[-1].lr:.3e}", f"{mean:.3e}")
    Console().print(table)


def draw(spec: RunSpec, params: BaseModel, rows: list[ScheduledStep], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise FomoError("--plot needs matplotlib; install it with: pip install matplotlib") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    num_tasks = spec.data.num_tasks
    steps = len(rows) // num_tasks
    figure, axes = pyplot.subplots(figsize=(9, 3.6))
    axes.plot([row.global_step for row in rows], [row.lr for row in rows], linewidth=1.4)
    for task in range(1, num_tasks):
        axes.axvline(task * steps - 0.5, color="grey", linewidth=0.6, linestyle=":")
    settings = ", ".join(f"{key}={value}" for key, value in params.model_dump().items())
    axes.set_title(f"{spec.scheduler.name}" + (f" ({settings})" if settings else "") + f": {num_tasks} tasks x {steps} steps", fontsize=10)
    axes.set_xlabel("global step")
    axes.set_ylabel("learning rate")
    axes.set_xlim(0, len(rows) - 1)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.25)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        figure.savefig(path, dpi=120)
    except ValueError as exc:
        raise FomoError(f"--plot {path}: {exc}") from None
    finally:
        pyplot.close(figure)
