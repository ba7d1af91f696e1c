"""``fomo-host sweep``: run a study (a base spec x grid x variants x seeds) through a launcher, into one study directory."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..progress import Reporter
from .common import load_host

EXIT_RUNS_FAILED = 1
EXIT_INTERRUPTED = 130


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sweep", help="run a study: a base spec crossed with a grid, named variants and seeds, through a launcher (local, ray, slurm)"
    )
    parser.add_argument(
        "study", nargs="?", metavar="STUDY", help="the study file (TOML); with --resume, default: the one the study started with"
    )
    parser.add_argument("--output", metavar="DIR", help="the study directory (default: runs/STUDY_NAME-TIMESTAMP)")
    parser.add_argument("--launcher", metavar="NAME", help="start the runs with this launcher instead of the study file's")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a spec override for every point (optimizer.lr=1e-4), or a study key (seeds=[0], launcher.params.max_parallel=4)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate every point and print them with their overrides; run nothing")
    parser.add_argument("--resume", metavar="DIR", help="continue a study: skip finished runs, resume interrupted ones, start the rest")
    parser.add_argument(
        "--confirm",
        type=int,
        metavar="N",
        help="STUDY is a search's study directory: run its N best trials (or front points) per variant again as a grid study on "
        "fresh seeds, scored on the test split (into STUDY/confirm)",
    )
    parser.add_argument("--seeds", metavar="S,S,...", help="with --confirm: the fresh seeds (default: 3 seeds above any the search used)")
    parser.set_defaults(handler=command_sweep)


def command_sweep(args: argparse.Namespace) -> int:
    from ..study.file import load_study_file
    from ..study.points import build_launcher, plan_study, split_sets
    from ..study.sweep import SweepOptions, claim_study_dir, create_study, default_study_dir, recorded_options, resume_study, sweep_lock

    if args.resume and args.output:
        raise FomoError("give --resume DIR (continue that study) or --output DIR (a new one), not both")
    if args.confirm is not None:
        from .sweep_search import confirm

        return confirm(args)
    if args.seeds is not None:
        raise FomoError("--seeds goes with --confirm N (the fresh seeds of a confirmation); a study's seeds are set with --set seeds=[...]")
    options = SweepOptions(tuple(args.set), args.launcher)
    study_dir = Path(args.resume) if args.resume else None
    if study_dir is not None:
        if not study_dir.is_dir():
            raise FomoError(f"--resume {study_dir}: no such study directory")
        recorded_file, recorded = recorded_options(study_dir)
        if args.study:
            study_file = Path(args.study)
        elif recorded_file is not None:
            study_file = recorded_file
        else:
            raise FomoError(
                f"--resume {study_dir}: its index records no study file; give it: fomo-host sweep STUDY.toml --resume {study_dir}"
            )
        # what the study started with, then what this command line adds
        options = SweepOptions((*recorded.sets, *args.set), args.launcher or recorded.launcher)
    elif args.study:
        study_file = Path(args.study)
    else:
        raise FomoError("give a study file: fomo-host sweep STUDY.toml (or --resume STUDY_DIR)")

    study_sets, spec_sets = split_sets(list(options.sets))
    study = load_study_file(study_file, study_sets, options.launcher)
    if study.search is not None:
        from .sweep_search import sweep_search

        return sweep_search(args, study, study_file, options, spec_sets, study_dir)
    host = load_host()
    plan = plan_study(study, study_file, spec_sets, host)
    launcher = build_launcher(plan, host)

    if args.dry_run:
        index = resume_study(plan, study_dir, options, write=False)[0] if study_dir is not None else None
        print_points(plan, index, study.launcher.name, launcher.describe())
        return 0

    launcher.check()
    reporter = Reporter(enabled=True)
    if study_dir is None:
        study_dir = Path(args.output) if args.output else default_study_dir(plan)
        claim_study_dir(study_dir)
        with sweep_lock(study_dir):
            index = create_study(plan, study_dir, options)
            return _sweep(index, launcher, study.launcher.name, reporter)
    with sweep_lock(study_dir):
        index, notes = resume_study(plan, study_dir, options)
        for note in notes:
            reporter.line(f"note: {note}")
        return _sweep(index, launcher, study.launcher.name, reporter)


def _sweep(index: Any, launcher: Any, launcher_name: str, reporter: Reporter) -> int:
    from ..study.index import read_index
    from ..study.sweep import duration, run_sweep

    started = time.monotonic()
    stopping = threading.Event()
    try:
        with stop_on_signals(stopping):
            tally = run_sweep(index, launcher, launcher_name, reporter, stopping)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: fomo-host sweep --resume {index.study_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    final = read_index(index.study_dir)
    counts = final.counts()
    reporter.line(
        f"study {index.study_dir}: {counts['finished']} of {len(final.runs)} runs finished, {counts['failed']} failed "
        f"({duration(time.monotonic() - started)} this sweep)"
    )
    for run in final.runs:
        if run.status == "failed":
            reporter.line(f"failed: {run.key} ({run.label}, seed {run.seed}): {run.error}")
    if counts["finished"]:
        reporter.line(f"compare: fomo-host compare {index.study_dir}")
        reporter.line(f"report:  fomo-host report {index.study_dir} --out {index.study_dir / 'report'}")
    if counts["failed"]:
        reporter.line(f"rerun the failed runs with: fomo-host sweep --resume {index.study_dir}")
    return EXIT_RUNS_FAILED if tally.failed or counts["failed"] else 0


@contextmanager
def stop_on_signals(stopping: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM (a kill, a scheduler's stop) stop the sweep: ``stopping`` is set first, so the runs the launcher
    then stops are recorded as interrupted (resumable), not failed; a second signal while stopping is ignored."""

    def interrupt(signum: int, frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        print("\nstopping the runs (each keeps its last checkpoint) ...", file=sys.stderr, flush=True)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def print_points(plan: Any, index: Any, launcher_name: str, describe: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..study.points import point_identity

    seeds = sorted({point.seed for point in plan.points})
    title = (
        f"study {plan.name}: {plan.groups} points x {len(seeds)} seeds = {len(plan.points)} runs "
        f"(base {plan.base}); launcher {launcher_name}" + (f": {describe}" if describe else "")
    )
    if plan.study.description:
        title += f"\n{plan.study.description}"
    descriptions = {variant.label: variant.description for variant in plan.study.variants if variant.description}
    table = Table(title=title, title_justify="left")
    columns = ["#", "point", "seeds", "overrides", "run directories"] + (["description"] if descriptions else [])
    for column in columns:
        table.add_column(column, overflow="fold")
    if index is not None:
        table.add_column("status")
    groups: dict[int, list[Any]] = {}
    for point in plan.points:
        groups.setdefault(point.group, []).append(point)
    statuses = {point_identity(run.variant, run.grid, run.seed): run.status for run in index.runs} if index is not None else {}
    for group, points in groups.items():
        first = points[0]
        row = [
            str(group),
            first.label,
            ", ".join(str(point.seed) for point in points),
            " ".join(first.group_overrides) or "-",
            f"runs/{first.group_dir}/seed-N",
        ]
        if descriptions:
            row.append(descriptions.get(first.variant or "", ""))
        if index is not None:
            row.append(", ".join(f"{point.seed}: {statuses.get(point.identity, 'new')}" for point in points))
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    if plan.common:
        print("every point: " + " ".join(plan.common))
