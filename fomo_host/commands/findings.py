"""``fomo-host findings``: each study's ``[finding]`` judged from its runs; a table, or a page with a figure per finding."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..reporting.findings import FindingResult


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "findings",
        help="judge each study's [finding] (its claims as paired tests, corrected over the claims): reproduced, not shown or contradicted",
        description="For each study directory, the claims of its study file's [finding] table, each a paired test of two "
        "points over the study's seeds, corrected over the finding's claims (Holm by default), and the verdict. "
        "--out DIR writes DIR/findings.md with a figure per study and the study's compare tables, and prints a "
        "row per finding linked to the page, for a README.",
    )
    parser.add_argument(
        "studies", nargs="+", metavar="STUDY_DIR", help="study directories (fomo-host sweep) whose study file has [finding]"
    )
    parser.add_argument(
        "--partial", action="store_true", help="judge a study whose claimed points have unfinished runs on the seeds that finished"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the findings as JSON")
    output.add_argument("--markdown", action="store_true", help="print the findings table as markdown")
    output.add_argument("--out", metavar="DIR", help="write DIR/findings.md: the table, a figure and the tables of each study")
    parser.set_defaults(handler=command_findings)


def command_findings(args: argparse.Namespace) -> int:
    from ..errors import FomoError
    from ..output_path import check_output_path
    from ..reporting.findings import brief_table, load_finding, summary_table, write_page
    from ..study.index import is_study_dir

    if args.out:
        check_output_path(args.out, "--out")  # before any study is read: a place that cannot take the page gets nothing
    for path in args.studies:
        if not is_study_dir(Path(path)):
            raise FomoError(f"{path}: not a study directory (no study.json); fomo-host sweep makes one")
    results = [load_finding(Path(path), args.partial) for path in args.studies]
    if args.json:
        print(json.dumps([as_json(result) for result in results], indent=2))
    elif args.markdown:
        print(summary_table(results))
    elif args.out:
        command = shlex.join(["fomo-host", "findings", *args.studies, *(["--partial"] if args.partial else []), "--out", args.out])
        page = write_page(results, Path(args.out), command)
        print(f"findings: {page}; one row per finding, linked to it (for a README):\n")
        print(brief_table(results, page))
    else:
        print_terminal(results)
    return 0


def as_json(result: FindingResult) -> dict[str, Any]:
    return {
        "study": str(result.study_dir),
        "study_file": str(result.study_file) if result.study_file else None,
        "title": result.finding.title,
        "paper": result.finding.paper,
        "verdict": result.verdict,
        "correction": result.finding.correction,
        "runs": result.runs,
        "seeds": result.seeds,
        "run_hours": result.run_hours,
        "reused": result.reused,
        "planned": result.planned,
        "claims": [
            {
                "point": claim.claim.point,
                "against": claim.against,
                "metric": claim.claim.metric,
                "direction": claim.claim.direction,
                "margin": claim.claim.margin,
                "difference": claim.difference.mean if claim.difference.n else None,
                "std": claim.difference.std,
                "seeds": claim.difference.n,
                "p_holds": claim.p_holds,
                "p_holds_adjusted": claim.p_holds_adjusted,
                "p_contradicts": claim.p_contradicts,
                "p_contradicts_adjusted": claim.p_contradicts_adjusted,
                "state": claim.state,
                "seeds_needed": claim.seeds_needed,
            }
            for claim in result.claims
        ],
    }


def print_terminal(results: list[FindingResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..reporting.findings import METHOD, cost_text

    table = Table(title="findings: each claim a paired test over the study's seeds, corrected over the finding's claims", show_lines=True)
    for heading in ("finding", "verdict", "claims", "runs"):
        table.add_column(heading)
    for result in results:
        table.add_row(
            f"{result.finding.title}\n{result.study_dir}",
            f"{result.verdict} ({result.held} of {len(result.claims)})",
            "\n".join(claim.text() for claim in result.claims),
            cost_text(result),
        )
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    console.print(METHOD.replace("**", "").replace("`", ""))
