"""``fomo-host compare``: final and trajectory-mean metrics of runs side by side, ranked by GM; a study's points as mean ± std."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..reporting.groups import CORRECTIONS

CORRECTION_TITLES = {"holm": "Holm-corrected", "bh": "Benjamini-Hochberg-corrected", "none": "uncorrected"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare", help="a table of runs' final and trajectory-mean metrics ranked by final GM; study points as mean ± std over seeds"
    )
    parser.add_argument(
        "run_dirs", nargs="+", metavar="DIR", help="run directories (finished or in progress) or study directories (fomo-host sweep)"
    )
    parser.add_argument(
        "--against",
        metavar="POINT",
        help="a study's points against this one, seed by seed: mean ± std of the differences, * where a paired t-test "
        "(two-sided, 5%%, corrected for the number of comparisons: --correction) finds a difference larger than the seeds' spread",
    )
    parser.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="holm",
        help="with --against: how the p-values are corrected for the number of comparisons in the table: holm (family-wise "
        "error, the default), bh (Benjamini-Hochberg, false discovery rate) or none",
    )
    parser.add_argument(
        "--best", action="store_true", help="a search study: only each variant's best trial (or its front), with how many trials it had"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the rows as JSON")
    output.add_argument("--markdown", action="store_true", help="print a markdown table (for a README)")
    parser.set_defaults(handler=command_compare)


def command_compare(args: argparse.Namespace) -> int:
    from ..study.index import is_study_dir

    paths = [Path(path) for path in args.run_dirs]
    if len(paths) == 1 and is_study_dir(paths[0]) and args.against is None:
        from ..study.index import read_index

        if read_index(paths[0]).study.get("search"):
            from ..reporting.search import load_search, print_search_comparison

            print_search_comparison(load_search(paths[0]), args.json, args.markdown, args.best)
            return 0
    if args.best:
        raise FomoError("--best lists a search study's best trials; give one search study directory")
    if any(is_study_dir(path) for path in paths):
        if args.against is not None:
            return compare_against(paths, args)
        if args.correction != "holm":
            raise FomoError("--correction applies to --against (a study's points against one of them)")
        return compare_groups(paths, args)
    if args.against is not None:
        raise FomoError("--against compares the points of a study directory (fomo-host sweep): none is given")
    if args.correction != "holm":
        raise FomoError("--correction applies to --against (a study's points against one of them)")
    return compare_runs(paths, args)


def _finite(value: Any) -> Any:
    # NaN (a run without zero-shot sets has no A_ZS) is not JSON: null
    return None if isinstance(value, float) and math.isnan(value) else value


def compare_runs(paths: list[Path], args: argparse.Namespace) -> int:
    from ..reporting.runs import load_runs
    from ..reporting.tables import COLUMNS, TERMINAL_COLUMNS, comparison_rows, format_cell, markdown_table

    rows = comparison_rows(load_runs(paths))
    if args.json:
        print(json.dumps([{key: _finite(value) for key, value in row.items()} for row in rows], indent=2))
        return 0
    if args.markdown:
        columns = [column for column in COLUMNS if column[0] not in {"A_KA_auc", "A_ZS_auc"}]
        cells = [[format_cell(row[key], style) for key, _, style in columns] for row in rows]
        left = {i for i, (key, _, _) in enumerate(columns) if key in {"run", "method"}}
        print(markdown_table([heading for _, heading, _ in columns], cells, left))
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


def compare_groups(paths: list[Path], args: argparse.Namespace) -> int:
    from ..reporting.groups import load_groups
    from ..reporting.tables import GROUP_COLUMNS, format_stat, group_rows

    rows = group_rows(load_groups(paths))
    title = "study points ranked by mean final GM: mean ± standard deviation over seeds (mean: over the evaluations after each task)"
    print_points(rows, GROUP_COLUMNS, format_stat, title, args)
    if args.json or args.markdown:
        return 0
    for unfinished in (row for row in rows if row["n"] != str(row["planned"])):
        statuses = ", ".join(f"{count} {status}" for status, count in unfinished["statuses"].items() if status != "finished")
        print(
            f"note: {unfinished['point']}: {len(unfinished['seeds'])} of {unfinished['planned']} runs finished ({statuses}); "
            "only finished runs count"
        )
    return 0


def compare_against(paths: list[Path], args: argparse.Namespace) -> int:
    from ..reporting.groups import load_groups
    from ..reporting.tables import DIFFERENCE_COLUMNS, count_tests, difference_rows, format_difference

    rows = difference_rows(load_groups(paths), args.against, args.correction)
    correction = f"{CORRECTION_TITLES[args.correction]} over {count_tests(rows)} comparisons"
    title = (
        f"each point minus {args.against!r}, seed by seed: mean ± standard deviation of the differences; "
        f"* where a paired t-test (two-sided, 5%, {correction}) finds the difference larger than the seeds' spread"
    )
    # the header of every form says which correction the stars use (markdown tables have no title)
    columns = [("point", f"point (* {correction}, p < 0.05)", "s"), *DIFFERENCE_COLUMNS[1:]]
    print_points(rows, columns, format_difference, title, args)
    return 0


Columns = list[tuple[str, str, str]]


def print_points(
    rows: list[dict[str, Any]], columns: Columns, format_value: Callable[[Any, str], str], title: str, args: argparse.Namespace
) -> None:
    """A study's points as JSON (each statistic an object of its fields), a markdown table or a terminal table."""
    if args.json:

        def plain(value: Any) -> Any:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return {key: _finite(field) for key, field in dataclasses.asdict(value).items()}
            return _finite(value)

        print(json.dumps([{key: plain(value) for key, value in row.items()} for row in rows], indent=2))
        return
    from ..reporting.tables import markdown_table

    cells = [[format_value(row[key], style) for key, _, style in columns] for row in rows]
    if args.markdown:
        left = {i for i, column in enumerate(columns) if column[0] == "point"}
        print(markdown_table([heading for _, heading, _ in columns], cells, left))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for key, heading, _ in columns:
        table.add_column(heading, justify="left" if key == "point" else "right", no_wrap=key != "point")
    for row in cells:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 220).print(table)
