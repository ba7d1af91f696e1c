"""``fomo-host report``: plots and one self-contained HTML page for one or more run directories."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..errors import FomoError
from ..output_path import check_output_path
from .common import load_host


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report", help="draw trajectories, the A_KA-A_ZS plane, per-dataset heatmaps and lr schedules of runs, with an HTML page"
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="DIR",
        help="run directories (finished or in progress), or study directories: each point's mean over its seeds, with the spread",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="where the figures (PNG, PDF, SVG) and index.html go (created if missing)"
    )
    parser.set_defaults(handler=command_report)


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "run"


def command_report(args: argparse.Namespace) -> int:
    from ..reporting import plots
    from ..reporting.groups import RunGroup, load_groups
    from ..reporting.html import write_page
    from ..reporting.runs import load_runs
    from ..reporting.schedules import run_schedule
    from ..study.index import is_study_dir

    out = Path(args.out)
    check_output_path(out, "--out")
    paths = [Path(path) for path in args.run_dirs]
    if len(paths) == 1 and is_search_dir(paths[0]):
        return report_search(paths[0], Path(args.out))
    groups: list[RunGroup] | None = None
    spread: plots.Spread | None = None
    if any(is_study_dir(path) for path in paths):
        # a study: one line per point, the mean over its finished seeds, with ± one standard deviation around it
        groups = [group for group in load_groups(paths) if group.finished]
        runs = [group.mean_run() for group in groups]
        spread = {group.label: group.spread() for group in groups}
    else:
        runs = load_runs(paths)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    figures: dict[str, Path] = {}

    figures["trajectories"] = out / "trajectories.png"
    plots.draw_trajectories(runs, figures["trajectories"], spread)
    try:
        plots.draw_plane(runs, out / "plane.png", spread)
        figures["plane"] = out / "plane.png"
    except FomoError as exc:
        notes.append(f"no A_KA-A_ZS plot: {exc}")
    heatmaps = {run.label: out / f"heatmap-{slug(run.label)}.png" for run in runs}
    scale = plots.heatmap_scale(runs)
    for run in runs:
        plots.draw_heatmap(run, heatmaps[run.label], scale)

    host = load_host()
    schedules = {}
    for run in runs:
        try:
            schedules[run.label] = run_schedule(run, host)
        except FomoError as exc:
            notes.append(f"no learning-rate schedule for {run.label}: {exc}")
    if schedules:
        figures["schedule"] = out / "schedule.png"
        plots.draw_schedules(schedules, runs, figures["schedule"])

    page = out / "index.html"
    write_page(runs, figures, heatmaps, notes, page, heatmap_scale=scale, groups=groups)
    for note in notes:
        print(f"note: {note}")
    for path in [*figures.values(), *heatmaps.values(), page]:
        print(path)
    print(f"each figure also as {' and '.join(suffix[1:].upper() for suffix in plots.VECTOR_FORMATS)} beside its PNG")
    return 0


def is_search_dir(path: Path) -> bool:
    from ..study.index import is_study_dir, read_index

    return is_study_dir(path) and bool(read_index(path).study.get("search"))


def report_search(study_dir: Path, out: Path) -> int:
    """A search study: its trials on the A_KA-A_ZS plane, Optuna's history and parameter importances per variant."""
    from ..reporting.search import draw_search, load_search, write_search_page

    if out.exists() and not out.is_dir():
        raise FomoError(f"--out {out}: exists and is not a directory")
    search = load_search(study_dir)
    figures = draw_search(search, out)
    page = out / "index.html"
    write_search_page(search, figures, page)
    for path in [*figures, page]:
        print(path)
    return 0
