"""``fomo-host update``: continue a finished run with new data or more tasks of its stream, in the same run directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..process import is_main_process
from .common import load_host

EXIT_INTERRUPTED = 130


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "update",
        help="continue a finished run with new data (--data) or more tasks of its stream (--tasks); each update is a release",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the finished run to update (also: continue its interrupted update)")
    parser.add_argument(
        "--data",
        metavar="NEW.toml",
        help="new data: [[data.sources]] and dataset lists under [data] (new adaptation datasets become new tasks), optional [release]",
    )
    parser.add_argument(
        "--tasks",
        type=int,
        metavar="K",
        help="with new adaptation data: cut its concepts into K tasks (default 1); without: train K more tasks of the run's stream",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY.PATH=VALUE",
        help="override a spec value for this update (TOML syntax), e.g. optimizer.lr=1e-4",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON at the end (the only output on stdout)")
    parser.set_defaults(handler=command_update)


def command_update(args: argparse.Namespace) -> int:
    from ..progress import Reporter
    from ..results import read_records
    from ..running import update_in_process
    from .run import print_trajectory

    host = load_host()
    run_dir = Path(args.run_dir)
    reporter = Reporter(enabled=is_main_process() and not args.quiet)
    data = Path(args.data) if args.data else None
    try:
        summary = update_in_process(host, run_dir, data, args.tasks, list(args.set or []), reporter)
    except KeyboardInterrupt:
        if is_main_process():
            print(f"\ninterrupted; continue the update with: fomo-host update {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if is_main_process():
        human = sys.stderr if args.json else sys.stdout
        print_trajectory(run_dir, read_records(run_dir), human)
        print(f"releases: fomo-host releases {run_dir}", file=human)
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
