"""``fomo-host schedule``: the learning rate of every step of a spec's stream, without training or building data."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from pydantic import BaseModel

from ..errors import FomoError
from ..plugins import PluginHost
from ..reporting.schedules import ScheduledStep, planned_tasks, stream_schedule
from ..resolve import resolve_component
from ..spec import RunSpec
from ..spec_loading import load_spec
from .common import add_spec_arguments, load_host


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "schedule",
        help="show the learning rate of every step of the stream (spec's scheduler, budget and data.num_tasks), "
        "or of a run's tasks so far and its next update (RUN_DIR)",
    )
    add_spec_arguments(parser)
    parser.add_argument(
        "--next",
        type=int,
        default=1,
        metavar="K",
        help="with a run directory in place of the spec: show the next update's K tasks after the run's (default 1)",
    )
    parser.add_argument(
        "--csv",
        action="store_true",
        help="print every step as CSV: task,step,global_step,lr (counted from 1, as the loggers' steps.csv counts them)",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="draw the learning rate over the whole stream into this image")
    parser.set_defaults(handler=command_schedule)


def scheduler_params(spec: RunSpec, host: PluginHost) -> BaseModel:
    """The scheduler's validated params; only these are checked, so no model or dataset plugin is needed."""
    return resolve_component(host.registry, "scheduler", spec.scheduler, "scheduler").params


def run_directory_tasks(run_dir: Path, spec: RunSpec, host: PluginHost, upcoming: int) -> tuple[int, int]:
    """(tasks trained so far, tasks of the preview) for a run directory: its tasks plus the next update's, where the
    scheduler can take more."""
    from ..components import needs_horizon
    from ..results import read_records

    records = read_records(run_dir)
    trained = records[-1]["task"] + 1 if records else 0
    if upcoming < 1:
        raise FomoError(f"--next {upcoming}: give at least 1")
    scheduler = resolve_component(host.registry, "scheduler", spec.scheduler, "scheduler").build()
    if needs_horizon(scheduler):
        print(f"scheduler {spec.scheduler.name} needs the number of tasks up front: the run cannot be updated; its own tasks only")
        return trained, max(trained, planned_tasks(spec))
    return trained, trained + upcoming


def command_schedule(args: argparse.Namespace) -> int:
    from ..run_directory import SPEC_FILE, path_kind

    host = load_host(quiet=args.csv)
    source = Path(args.spec)
    trained = num_tasks = None
    if path_kind(source, "schedule") == "directory":
        if not (source / SPEC_FILE).is_file():
            raise FomoError(f"{source}: not a run directory (no {SPEC_FILE}); give a spec file or a run directory")
        spec = load_spec(source / SPEC_FILE, list(args.set or []))
        trained, num_tasks = run_directory_tasks(source, spec, host, args.next)
    else:
        spec = load_spec(source, list(args.set or []))
    rows = stream_schedule(spec, host, num_tasks)
    if args.csv:
        write_csv(rows)
    else:
        print_summary(spec, rows, trained)
    if args.plot:
        draw(spec, scheduler_params(spec, host), rows, Path(args.plot), trained)
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


def print_summary(spec: RunSpec, rows: list[ScheduledStep], trained: int | None = None) -> None:
    """``trained``: for a run directory, its tasks so far (the rest are its next update's)."""
    from rich.console import Console
    from rich.table import Table

    num_tasks = rows[-1].task + 1
    steps = len(rows) // num_tasks
    shape = f"{num_tasks} tasks" if trained is None else f"{trained} tasks trained + {num_tasks - trained} of the next update"
    print(f"scheduler {spec.scheduler.name}: {shape} x {steps} steps; lr = optimizer.lr {spec.optimizer.lr:g} x factor")
    table = Table()
    for column in ("task", "first lr", "peak lr", "at step", "last lr", "mean lr"):
        table.add_column(column, justify="right")
    for task in range(num_tasks):
        task_rows = rows[task * steps : (task + 1) * steps]
        top = max(task_rows, key=lambda row: row.lr)
        mean = sum(row.lr for row in task_rows) / len(task_rows)
        label = f"{task + 1} (next)" if trained is not None and task >= trained else str(task + 1)
        table.add_row(label, f"{task_rows[0].lr:.3e}", f"{top.lr:.3e}", str(top.step), f"{task_rows[-1].lr:.3e}", f"{mean:.3e}")
    Console().print(table)


def draw(spec: RunSpec, params: BaseModel, rows: list[ScheduledStep], path: Path, trained: int | None = None) -> None:
    try:
        import matplotlib
    except ImportError:
        raise FomoError("--plot needs matplotlib; install it with: pip install matplotlib") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    num_tasks = rows[-1].task + 1
    steps = len(rows) // num_tasks
    figure, axes = pyplot.subplots(figsize=(9, 3.6))
    axes.plot([row.global_step for row in rows], [row.lr for row in rows], linewidth=1.4)
    for task in range(1, num_tasks):
        axes.axvline(task * steps - 0.5, color="grey", linewidth=0.6, linestyle=":")
    if trained is not None and trained < num_tasks:
        axes.axvspan(trained * steps - 0.5, len(rows) - 0.5, color="tab:orange", alpha=0.12, label="next update")
        axes.legend(loc="upper right", fontsize=8)
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
