"""``fomo-host run``: run (or resume) a whole continual stream."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from ..engine.preflight import check_loggers
from ..errors import FomoError
from ..process import is_main_process
from ..progress import Reporter
from ..registry import Registry
from ..results import read_records
from ..run_directory import SPEC_FILE, choose_run_dir, path_kind
from ..spec import RunSpec
from ..spec_loading import load_spec
from .common import load_host

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


def spec_to_run(args: argparse.Namespace, registry: Registry) -> RunSpec:
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
    from ..running import run_in_process

    host = load_host()
    spec = spec_to_run(args, host.registry)
    check_loggers(host, spec)  # a tracker that would refuse its settings stops the run before anything is created
    resume = bool(args.resume)
    output = args.resume or args.output
    run_dir = choose_run_dir(spec, Path(output) if output else None, resume)
    reporter = Reporter(enabled=is_main_process() and not args.quiet)
    try:
        summary = run_in_process(host, spec, run_dir, resume, reporter)
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
