"""``fomo-host drift``: how far each zero-shot set and A_ZS moved from the base model's scores, against stated bounds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..reporting.drift import Drift, RunDrift


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "drift",
        help="how far each zero-shot set and A_ZS moved from the base model (a pool-only control's plateau check)",
        description="For every run (or every finished run of a study): each zero-shot set's base score, its change at the "
        "end and its largest change along the stream, and the same for A_ZS. With bounds, exits 1 when a change exceeds "
        "one (e.g. a pool-only control: fomo-host drift STUDY --max-set-change 0.02 --max-aggregate-change 0.01).",
    )
    parser.add_argument("paths", nargs="+", metavar="RUN_OR_STUDY", help="run directories and/or study directories")
    parser.add_argument("--max-set-change", type=bounded, default=None, metavar="X", help="largest allowed |change| of a set")
    parser.add_argument("--max-aggregate-change", type=bounded, default=None, metavar="X", help="largest allowed |change| of A_ZS")
    parser.add_argument(
        "--per-run", action="store_true", help="a line per run (its A_ZS and the set that moved farthest) instead of a line per set"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the rows as JSON")
    output.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.set_defaults(handler=command_drift)


def bounded(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a change of a score in [0, 1)")
    return value


def command_drift(args: argparse.Namespace) -> int:
    from ..reporting.drift import AGGREGATE, load_drift_runs, run_drift, summarise_runs, violations
    from ..reporting.tables import markdown_table

    runs_drifts = [run_drift(run) for run in load_drift_runs([Path(path) for path in args.paths])]
    drifts = [drift for run_drifts in runs_drifts for drift in run_drifts]
    beyond = set(violations(drifts, args.max_set_change, args.max_aggregate_change))
    if args.json and args.per_run:
        print(json.dumps([summary_json(summary) for summary in summarise_runs(runs_drifts, beyond)], indent=2))
    elif args.json:
        print(json.dumps([{**vars(drift), "exceeds": drift in beyond} for drift in drifts], indent=2))
    else:
        header, rows, left = per_run_rows(runs_drifts, beyond) if args.per_run else per_set_rows(drifts, beyond)
        if args.markdown:
            print(markdown_table(header, rows, left=left))
            print()  # the verdict below is a paragraph of its own, not a row of the table
        else:
            from rich.console import Console
            from rich.table import Table

            table = Table(title="zero-shot drift from the base model")
            for index, column in enumerate(header):
                table.add_column(column, justify="left" if index in left else "right")
            for row in rows:
                table.add_row(*row)
            Console().print(table)
    bounds = f"sets within {args.max_set_change}, {AGGREGATE} within {args.max_aggregate_change}"
    if beyond:
        worst = max(beyond, key=lambda drift: abs(drift.largest_change))
        print(
            f"drift: {len(beyond)} of {len(drifts)} changes beyond the bounds ({bounds}); the largest: {worst.run}, {worst.name} "
            f"{worst.largest_change:+.4f} after task {worst.largest_at_task}"
        )
        return 1
    if args.max_set_change is not None or args.max_aggregate_change is not None:
        print(f"drift: every change within the bounds ({bounds}) in {len({drift.run for drift in drifts})} runs")
    return 0


def per_set_rows(drifts: list[Drift], beyond: set[Drift]) -> tuple[list[str], list[list[str]], set[int]]:
    header = ["run", "set", "base", "final change", "largest change", "at task", ""]
    rows = [
        [
            drift.run,
            drift.name,
            f"{drift.base:.4f}",
            f"{drift.final_change:+.4f}",
            f"{drift.largest_change:+.4f}",
            str(drift.largest_at_task),
            "beyond bound" if drift in beyond else "",
        ]
        for drift in drifts
    ]
    return header, rows, {0, 1, 6}


def per_run_rows(runs_drifts: list[list[Drift]], beyond: set[Drift]) -> tuple[list[str], list[list[str]], set[int]]:
    from ..reporting.drift import AGGREGATE, summarise_runs

    header = [
        "run",
        f"base {AGGREGATE}",
        f"{AGGREGATE} final change",
        f"{AGGREGATE} largest change",
        "set moved farthest",
        "its largest change",
        "beyond bounds",
    ]
    rows = [
        [
            summary.run,
            f"{summary.base:.4f}",
            f"{summary.aggregate.final_change:+.4f}",
            f"{summary.aggregate.largest_change:+.4f} (task {summary.aggregate.largest_at_task})",
            summary.farthest_set.name,
            f"{summary.farthest_set.largest_change:+.4f} (task {summary.farthest_set.largest_at_task})",
            str(summary.beyond),
        ]
        for summary in summarise_runs(runs_drifts, beyond)
    ]
    return header, rows, {0, 4}


def summary_json(summary: RunDrift) -> dict:
    return {
        "run": summary.run,
        "base": summary.base,
        "aggregate": vars(summary.aggregate),
        "farthest_set": vars(summary.farthest_set),
        "beyond": summary.beyond,
    }
