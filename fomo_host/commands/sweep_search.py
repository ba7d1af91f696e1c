"""``fomo-host sweep`` on a study file with a ``[search]`` table, and ``--confirm``: the best trials again on fresh seeds."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..progress import Reporter

CONFIRM_FOLDER = "confirm"
CONFIRM_FILE = "confirm.toml"
DEFAULT_CONFIRM_SEEDS = 3


def sweep_search(args: argparse.Namespace, study: Any, study_file: Path, options: Any, spec_sets: list[str], study_dir: Path | None) -> int:
    from ..study.points import build_launcher
    from ..study.search import create_search, plan_search, resume_search, round_size
    from ..study.sweep import claim_study_dir, default_study_dir, sweep_lock
    from .common import load_host

    host = load_host()
    plan = plan_search(study, study_file, spec_sets, host)
    launcher = build_launcher(plan, host)  # type: ignore[arg-type]  # reads only .study and .launcher_params
    parallel = round_size(plan, launcher)
    if args.dry_run:
        index = resume_search(plan, study_dir, options.sets, options.launcher, write=False) if study_dir is not None else None
        print_search(plan, index, study.launcher.name, launcher.describe(), parallel)
        return 0
    launcher.check()
    reporter = Reporter(enabled=True)
    if study_dir is None:
        study_dir = Path(args.output) if args.output else default_study_dir(plan)  # type: ignore[arg-type]
        claim_study_dir(study_dir)
        with sweep_lock(study_dir):
            index = create_search(plan, study_dir, options.sets, options.launcher)
            return _search(plan, index, launcher, study.launcher.name, reporter, parallel)
    with sweep_lock(study_dir):
        index = resume_search(plan, study_dir, options.sets, options.launcher)
        return _search(plan, index, launcher, study.launcher.name, reporter, parallel)


def _search(plan: Any, index: Any, launcher: Any, launcher_name: str, reporter: Reporter, parallel: int) -> int:
    from ..study.search import run_search
    from ..study.sweep import duration
    from .sweep_grid import EXIT_INTERRUPTED, EXIT_RUNS_FAILED, stop_on_signals

    started = time.monotonic()
    stopping = threading.Event()
    try:
        with stop_on_signals(stopping):
            tally = run_search(plan, index, launcher, launcher_name, reporter, stopping, parallel)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: fomo-host sweep --resume {index.study_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    reporter.line(
        f"search {index.study_dir}: {tally.complete} trials complete, {tally.pruned} pruned, {tally.failed} failed this sweep "
        f"({duration(time.monotonic() - started)})"
    )
    reporter.line(f"compare: fomo-host compare {index.study_dir}")
    reporter.line(f"report:  fomo-host report {index.study_dir} --out {index.study_dir / 'report'}")
    reporter.line(f"confirm: fomo-host sweep {index.study_dir} --confirm 1")
    return EXIT_RUNS_FAILED if tally.failed else 0


def print_search(plan: Any, index: Any, launcher_name: str, describe: str, parallel: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = plan.table
    title = (
        f"search {plan.name}: {len(plan.variants)} variant(s) x {table.trials} trials x {len(plan.seeds)} seed(s) {plan.seeds} "
        f"(base {plan.base}); sampler {table.sampler}, pruner {table.pruner.name}; objectives {', '.join(table.objectives)} "
        f"on the {table.split} split; launcher {launcher_name}" + (f": {describe}" if describe else "") + f", {parallel} runs at a time"
    )
    grid = Table(title=title, title_justify="left")
    for column in ("variant", "overrides", "space"):
        grid.add_column(column, overflow="fold")
    if index is not None:
        grid.add_column("trials so far")
    for variant in plan.variants:
        space = "; ".join(f"{key} {describe_dimension(dimension)}" for key, dimension in variant.space.items())
        row = [variant.label or "-", " ".join(variant.set_overrides) or "-", space]
        if index is not None:
            runs = [run for run in index.runs if run.variant == variant.label]
            states: dict[str, int] = {}
            for run in runs:
                states[run.status] = states.get(run.status, 0) + 1
            row.append(", ".join(f"{count} {status}" for status, count in sorted(states.items())) or "none")
        grid.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(grid)
    if plan.common:
        print("every trial: " + " ".join(plan.common))


def describe_dimension(dimension: Any) -> str:
    kind = dimension.kind
    if kind == "choice":
        return f"choice {dimension.choice}"
    low, high = dimension.bounds
    extra = " log" if dimension.log else f" step {dimension.step:g}" if dimension.step else ""
    return f"{kind} [{low:g}, {high:g}]{extra}"


# ----------------------------------------------------------------------------- --confirm


def confirm(args: argparse.Namespace) -> int:
    """Write a grid study of the best trials (or the front) of a search study directory and run it on fresh seeds."""
    from ..study.file import load_study_file
    from ..study.index import is_study_dir, read_index
    from ..study.points import build_launcher, plan_study
    from ..study.sweep import SweepOptions, claim_study_dir, create_study, resume_study, sweep_lock
    from .common import load_host
    from .sweep_grid import sweep_grid

    source = Path(args.resume or args.study or "")
    if not is_study_dir(source):
        raise FomoError(
            f"--confirm: {source} is not a study directory; give the search's study directory (fomo-host sweep DIR --confirm N)"
        )
    index = read_index(source)
    if not index.study.get("search"):
        raise FomoError(f"--confirm: {source} is a grid study; --confirm reruns the best trials of a search study")
    searched = set(index.study.get("seeds") or [])
    seeds = parse_seeds(args.seeds) if args.seeds else fresh_seeds(searched, DEFAULT_CONFIRM_SEEDS)
    reused = sorted(searched & set(seeds))
    if reused:
        raise FomoError(f"--seeds: the search used seed(s) {reused}; a confirmation runs on seeds the search never saw")
    text = confirm_study_text(source, index, args.confirm, seeds)
    confirm_file = source / CONFIRM_FILE
    target = source / CONFIRM_FOLDER
    if target.exists() and is_study_dir(target):
        previous = confirm_file.read_text(encoding="utf-8") if confirm_file.is_file() else ""
        if previous != text:
            raise FomoError(
                f"--confirm: {target} confirms other trials or seeds than these; remove it to confirm again, or resume it as it is "
                f"with: fomo-host sweep --resume {target}"
            )
    confirm_file.write_text(text, encoding="utf-8")
    study = load_study_file(confirm_file)
    host = load_host()
    plan = plan_study(study, confirm_file, [], host)
    launcher = build_launcher(plan, host)
    if args.dry_run:
        from .sweep_grid import print_points

        print_points(plan, None, study.launcher.name, launcher.describe())
        return 0
    launcher.check()
    reporter = Reporter(enabled=True)
    options = SweepOptions()
    if target.exists() and is_study_dir(target):
        with sweep_lock(target):
            resumed, _ = resume_study(plan, target, options)
            return sweep_grid(resumed, launcher, study.launcher.name, reporter)
    claim_study_dir(target)
    with sweep_lock(target):
        created = create_study(plan, target, options)
        return sweep_grid(created, launcher, study.launcher.name, reporter)


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise FomoError(f"--seeds {text!r}: give whole numbers separated by commas, e.g. --seeds 10,11,12") from None
    if not seeds or any(seed < 0 for seed in seeds) or len(set(seeds)) < len(seeds):
        raise FomoError(f"--seeds {text!r}: give distinct seeds of at least 0")
    return seeds


def fresh_seeds(used: set[int], count: int) -> list[int]:
    start = max(used, default=-1) + 1
    return list(range(start, start + count))


def confirm_study_text(study_dir: Path, index: Any, count: int, seeds: list[int]) -> str:
    """The confirmation grid study: a variant per chosen trial (its variant's overrides and its values), scored on the test split."""
    import tomli_w

    from ..reporting.search import chosen_trials, load_search
    from ..spec import parse_override

    if count < 1:
        raise FomoError(f"--confirm {count}: give how many of the best trials (or front points) of each variant to confirm, at least 1")
    search = load_search(study_dir)
    chosen = chosen_trials(search, count)
    if not chosen:
        raise FomoError(f"--confirm: {study_dir} has no complete trial to confirm yet")
    split_override = 'evaluation.split="validation"'
    common = [text for text in index.study.get("common", []) if text != split_override]
    sets: dict[str, Any] = {}
    for text in common:
        keys, value = parse_override(text)
        sets[".".join(keys)] = value
    variants = []
    for trial in chosen:
        overrides = [text for text in trial.overrides if text != split_override and text not in common and not text.startswith("run.seed=")]
        own: dict[str, Any] = {}
        for text in overrides:
            keys, value = parse_override(text)
            merge_override(own, keys, value)
        variants.append({"label": trial.confirm_label, "description": trial.describe(), "set": own})
    study = index.study
    launcher_name = study.get("launcher")
    content: dict[str, Any] = {
        "base": str(study["base"]),
        "name": f"{study['name']}-confirm",
        "description": f"the best trials of search {study_dir} on fresh seeds, scored on the test split",
        "seeds": seeds,
        "set": sets,
        "variants": variants,
    }
    original = read_launcher(Path(str(study_dir / "study.toml")))
    if launcher_name:
        content["launcher"] = {"name": launcher_name}
    elif original:
        content["launcher"] = original
    return "# written by fomo-host sweep --confirm: the chosen trials of the search, on seeds it never used\n" + tomli_w.dumps(content)


def read_launcher(study_copy: Path) -> dict[str, Any] | None:
    from ..spec import read_toml

    if not study_copy.is_file():
        return None
    launcher = read_toml(study_copy).get("launcher")
    return launcher if isinstance(launcher, dict) else None


def merge_override(sets: dict[str, Any], keys: list[str], value: Any) -> None:
    """Add ``KEY.PATH=VALUE`` to a variant's ``set``; a path inside a table it already sets goes into that table (a study
    refuses two keys naming one spec value)."""
    import copy

    for key in list(sets):
        parts = key.split(".")
        if keys[: len(parts)] == parts and isinstance(sets[key], dict) and len(keys) > len(parts):
            node = sets[key] = copy.deepcopy(sets[key])
            for part in keys[len(parts) : -1]:
                node = node.setdefault(part, {})
            node[keys[-1]] = value
            return
    sets[".".join(keys)] = value
