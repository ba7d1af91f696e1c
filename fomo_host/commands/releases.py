"""``fomo-host releases``: a run's numbered releases with their scores and the change from the release before."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("releases", help="list a run's releases (one per update) with A_KA, A_ZS and the change from the previous")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--json", action="store_true", help="print the releases as JSON")
    parser.set_defaults(handler=command_releases)


def signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def command_releases(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..errors import FomoError
    from ..releases import read_releases, with_changes

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FomoError(f"{run_dir}: no such run directory")
    rows = with_changes(read_releases(run_dir))
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        print(f"{run_dir}: no releases yet (a run's first release is written when it is first updated: fomo-host update {run_dir} ...)")
        return 0
    table = Table(title=f"releases of {run_dir.name}")
    for column in ("release", "tasks", "A_KA", "change", "A_ZS", "change", "GM", "sha256"):
        table.add_column(column, justify="left" if column in ("release", "sha256") else "right")
    for row in rows:
        change = row["change"] or {}
        table.add_row(
            f"v{row['release']}" + ("" if row["published"] else " (held)"),
            f"{row['tasks'][0]}-{row['tasks'][1]}" if row["tasks"][0] != row["tasks"][1] else str(row["tasks"][1]),
            f"{row['A_KA']:.4f}",
            signed(change.get("A_KA")) + ("*" if row["new_sets"].get("adaptation") else ""),
            f"{row['A_ZS']:.4f}",
            signed(change.get("A_ZS")) + ("*" if row["new_sets"].get("zero_shot") else ""),
            f"{row['GM']:.4f}",
            row["sha256"][:12],
        )
    Console().print(table)
    for row in rows:
        added = [name for names in row["new_sets"].values() for name in names]
        if added:
            print(f"* v{row['release']} is scored on sets v{row['release'] - 1} was not: {', '.join(added)}")
    for row in rows:
        if not row["published"]:
            print(row["held_because"])
    return 0
