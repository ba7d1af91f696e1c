"""``fomo-host compare``: final and trajectory-mean metrics of runs side by side, ranked by GM."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="a table of runs' final and trajectory-mean metrics, ranked by final GM")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (finished or in progress)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(handler=command_compare)


def command_compare(args: argparse.Namespace) -> int:
    from ..reporting.runs import load_runs
    from ..reporting.tables import TERMINAL_COLUMNS, comparison_rows, format_cell

    rows = comparison_rows(load_runs([Path(path) for path in args.run_dirs]))
    if args.json:
        # NaN (a run without zero-shot sets has no A_ZS) is not JSON: null
        finite = [{key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()} for row in rows]
        print(json.dumps(finite, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="runs ranked by final GM (mean: over the evaluations after each task)")
    for key, heading, _ in TERMINAL_COLUMNS:
        table.add_column(heading, justify="left" if key in {"run", "method"} else "right", no_wrap=key not in {"run", "method"})
    for row in rows:
        table.add_row(*(format_cell(row[key], style) for key, _, style in TERMINAL_COLUMNS))
    # piped or captured output is not cut to 80 columns
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0
