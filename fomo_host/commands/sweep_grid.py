"""Running a grid study's runs through its launcher, and listing its points: shared by ``fomo-host sweep`` and its
``--confirm`` of a search's best trials (:mod:`fomo_host.commands.sweep_search`)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..progress import Reporter

EXIT_RUNS_FAILED = 1
EXIT_INTERRUPTED = 130


def sweep_grid(index: Any, launcher: Any, launcher_name: str, reporter: Reporter) -> int:
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


def print_points(plan: Any, index: Any, launcher_name: str, describe: str, reusable: frozenset[str] = frozenset()) -> None:
    """The points of a dry run; ``reusable``: the fingerprints that ``--reuse`` would copy from another study."""
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
    if index is not None or reusable:
        table.add_column("status")
    groups: dict[int, list[Any]] = {}
    for point in plan.points:
        groups.setdefault(point.group, []).append(point)
    statuses = {point_identity(run.variant, run.grid, run.seed): run.status for run in index.runs} if index is not None else {}

    def status(point: Any) -> str:
        now = statuses.get(point.identity, "new")
        return "reused" if now not in ("finished", "running") and point.fingerprint in reusable else now

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
        if index is not None or reusable:
            row.append(", ".join(f"{point.seed}: {status(point)}" for point in points))
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    if reusable:
        copied = sum(status(point) == "reused" for point in plan.points)
        pending = sum(status(point) not in ("finished", "reused") for point in plan.points)
        print(f"--reuse: {copied} of {len(plan.points)} runs would be copied, {pending} to run")
    if plan.common:
        print("every point: " + " ".join(plan.common))
