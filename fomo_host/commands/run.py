"""``fomo-host run``: run (or resume) a whole continual stream."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..engine.preflight import check_loggers
from ..errors import FomoError
from ..output_path import check_output_path
from ..plugins import PluginHost
from ..progress import Reporter
from ..registry import Registry
from ..results import read_records
from ..run_directory import SPEC_FILE, RunDirectory, environment_errors_as_one_line, path_kind
from ..spec import RunSpec
from ..spec_loading import load_spec
from .common import is_main_process, load_host

EXIT_INTERRUPTED = 130


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run a whole continual stream")
    parser.add_argument("spec", nargs="?", help="the spec file (TOML); with --resume, optional: the run's own spec.toml is used")
    parser.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a spec value (TOML syntax), e.g. optimizer.lr=1e-4"
    )
    parser.add_argument("--output", metavar="DIR", help="run directory (default: run.output_dir/run.name-TIMESTAMP)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run from its last intact checkpoint (its spec.toml is the spec)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON at the end (the only output on stdout)")
    parser.set_defaults(handler=command_run)


def default_run_dir(spec: RunSpec) -> Path:
    """``output_dir/name-YYYYmmdd-HHMMSS``, with a counter if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}"
    counter = 1
    while path_kind(candidate, "run.output_dir/run.name:") != "missing":
        counter += 1
        candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}-{counter}"
    return candidate


def longest_default_run_dir(spec: RunSpec) -> Path:
    """The longest name :func:`default_run_dir` can give (with a counter), for checking the place before a run."""
    return spec.run.output_dir / f"{spec.run.name}-20260101-000000-99"


def choose_run_dir(spec: RunSpec, output: Path | None, resume: bool) -> Path:
    """The run directory: ``output`` (to resume, an existing run), or a fresh one under run.output_dir.

    Whether it can be used is decided when it is claimed (see :func:`execute_run`).
    """
    if resume and output is None:
        raise FomoError("resuming needs the run directory")
    return output if output is not None else default_run_dir(spec)


def execute_run(host: PluginHost, spec: RunSpec, run_dir: Path, resume: bool, reporter: Reporter) -> dict[str, Any]:
    """Claim ``run_dir``, build everything from the spec, then run (or resume) the whole stream into it; returns the summary.

    The directory is claimed (created, locked) before anything is built, so a second run on
    it refuses at once, and a start that fails before writing anything leaves nothing behind.
    """
    from ..engine.checkpoint import has_checkpoint
    from ..engine.run import ContinualRun, prepare

    if not resume and is_main_process():
        check_output_path(run_dir, "--output")
    claimed = RunDirectory.claim(run_dir, resume, "--resume" if resume else "--output", main_process=is_main_process())
    failed = True
    try:
        with environment_errors_as_one_line(run_dir, resumable=lambda: has_checkpoint(run_dir)):
            setup = prepare(host, spec, reporter)
            device = setup.runtime.device
            reporter.line(
                f"run {run_dir}: {len(setup.tasks)} tasks x {setup.steps_per_task} steps, batch {spec.run.batch_size}, "
                f"method {spec.method.name}, merger {spec.merger.name}, device {device if device.type == 'cuda' else device.type}"
                + (f" x{setup.runtime.world_size}" if setup.runtime.world_size > 1 else "")
            )
            summary = ContinualRun(host, setup, run_dir, reporter).execute(resume=resume)
        failed = False
        return summary
    finally:
        # a start interrupted or refused while it had written nothing leaves no directory
        claimed.release(failed=failed)


def resolve_spec(args: argparse.Namespace, registry: Registry) -> RunSpec:
    """The spec to run: the file given, or (resuming without one) the run's own resolved spec, with the overrides."""
    overrides = list(args.set or [])
    if not args.resume:
        if not args.spec:
            raise FomoError("give a spec file to start a run, or --resume RUN_DIR to continue one")
        return load_spec(Path(args.spec), overrides, registry)
    if args.output:
        raise FomoError("give either --output (a new run) or --resume (an existing one), not both")
    run_dir = Path(args.resume)
    if path_kind(run_dir, "--resume") != "directory":
        raise FomoError(f"--resume {run_dir}: no such run directory")
    stored = run_dir / SPEC_FILE
    if not stored.is_file():
        raise FomoError(
            f"--resume {run_dir}: nothing to resume (no {SPEC_FILE}: the run stopped before it started); "
            f"start it again with: fomo-host run SPEC --output {run_dir}"
        )
    spec = load_spec(Path(args.spec) if args.spec else stored, overrides, registry)
    if load_spec(stored).fingerprint() != spec.fingerprint():
        raise FomoError(
            f"--resume {run_dir}: the spec differs from the one this run started with ({stored}); "
            f"resume with that spec: fomo-host run --resume {run_dir}"
        )
    return spec


def command_run(args: argparse.Namespace) -> int:
    host = load_host()
    spec = resolve_spec(args, host.registry)
    check_loggers(host, spec)  # a tracker that would refuse its settings stops the run before anything is created
    resume = bool(args.resume)
    output = args.resume or args.output
    run_dir = choose_run_dir(spec, Path(output) if output else None, resume)
    reporter = Reporter(enabled=is_main_process() and not args.quiet)
    try:
        summary = execute_run(host, spec, run_dir, resume, reporter)
    except KeyboardInterrupt:
        if is_main_process():
            if (run_dir / SPEC_FILE).is_file():
                print(f"\ninterrupted; continue with: fomo-host run --resume {run_dir}", file=sys.stderr)
            else:
                print("\ninterrupted before the run started; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if is_main_process():
        # with --json, stdout carries the JSON alone: the table and paths go to stderr
        human = sys.stderr if args.json else sys.stdout
        print_trajectory(run_dir, read_records(run_dir), human)
        print(f"results: {run_dir / 'results.jsonl'}\nsummary: {run_dir / 'summary.json'}", file=human)
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def print_trajectory(run_dir: Path, records: list[dict], stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trajectory of {run_dir.name}")
    for column in ("task", "samples seen", "A_KA", "A_ZS", "GM"):
        table.add_column(column, justify="right")
    for record in records:
        label = "base" if record["task"] < 0 else str(record["task"] + 1)
        table.add_row(label, f"{record['samples_seen']:,}", f"{record['A_KA']:.4f}", f"{record['A_ZS']:.4f}", f"{record['GM']:.4f}")
    Console(file=stream).print(table)
