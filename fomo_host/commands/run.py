"""``fomo-host run``: run (or resume) a whole continual stream."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..plugins import PluginHost
from ..progress import Reporter
from ..results import read_records
from ..spec import RunSpec
from .common import add_spec_arguments, is_main_process, load_host, read_spec

EXIT_INTERRUPTED = 130


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run a whole continual stream")
    add_spec_arguments(parser)
    parser.add_argument("--output", metavar="DIR", help="run directory (default: run.output_dir/run.name-TIMESTAMP)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON at the end")
    parser.set_defaults(handler=command_run)


def default_run_dir(spec: RunSpec) -> Path:
    """``output_dir/name-YYYYmmdd-HHMMSS``, with a counter if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}"
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}-{counter}"
    return candidate


def choose_run_dir(spec: RunSpec, output: Path | None, resume: bool) -> Path:
    """The run directory: ``output`` (to resume, an existing run; else empty or new), or a fresh one under run.output_dir."""
    if resume:
        if output is None or not output.is_dir():
            raise FomoError(f"--resume {output}: no such run directory")
        return output
    run_dir = output if output is not None else default_run_dir(spec)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FomoError(f"{run_dir} exists and is not empty; pass --resume {run_dir} to continue it, or another --output")
    return run_dir


def execute_run(host: PluginHost, spec: RunSpec, run_dir: Path, resume: bool, reporter: Reporter) -> dict[str, Any]:
    """Build everything from the spec, then run (or resume) the whole stream into ``run_dir``; returns the summary."""
    from ..engine.run import ContinualRun, prepare

    setup = prepare(host, spec, reporter)
    device = setup.runtime.device
    reporter.line(
        f"run {run_dir}: {len(setup.tasks)} tasks x {setup.steps_per_task} steps, batch {spec.run.batch_size}, "
        f"method {spec.method.name}, merger {spec.merger.name}, device {device if device.type == 'cuda' else device.type}"
        + (f" x{setup.runtime.world_size}" if setup.runtime.world_size > 1 else "")
    )
    return ContinualRun(host, setup, run_dir, reporter).execute(resume=resume)


def command_run(args: argparse.Namespace) -> int:
    host = load_host()
    spec = read_spec(args, host)
    reporter = Reporter(enabled=is_main_process() and not args.quiet)
    output = args.resume or args.output
    run_dir = choose_run_dir(spec, Path(output) if output else None, bool(args.resume))
    try:
        summary = execute_run(host, spec, run_dir, bool(args.resume), reporter)
    except KeyboardInterrupt:
        if is_main_process():
            print(f"\ninterrupted; continue with: fomo-host run {args.spec} --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if is_main_process():
        print_trajectory(run_dir)
        print(f"results: {run_dir / 'results.jsonl'}\nsummary: {run_dir / 'summary.json'}")
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def print_trajectory(run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trajectory of {run_dir.name}")
    for column in ("task", "samples seen", "A_KA", "A_ZS", "GM"):
        table.add_column(column, justify="right")
    for record in read_records(run_dir):
        label = "base" if record["task"] < 0 else str(record["task"] + 1)
        table.add_row(label, f"{record['samples_seen']:,}", f"{record['A_KA']:.4f}", f"{record['A_ZS']:.4f}", f"{record['GM']:.4f}")
    Console().print(table)
