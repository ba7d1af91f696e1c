"""``fomo-host sweep``: run a study (a base spec x grid x variants x seeds) through a launcher, into one study directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import FomoError
from ..progress import Reporter
from .common import load_host
from .sweep_grid import print_points, sweep_grid


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
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="DIR",
        help="copy, instead of running again, every run that this other study directory finished with the same spec "
        "(seed included); repeatable",
    )
    parser.add_argument("--seeds", metavar="S,S,...", help="with --confirm: the fresh seeds (default: 3 seeds above any the search used)")
    parser.set_defaults(handler=command_sweep)


def command_sweep(args: argparse.Namespace) -> int:
    from ..study.file import load_study_file
    from ..study.points import build_launcher, plan_study, split_sets
    from ..study.reuse import find_donors, reuse_runs
    from ..study.sweep import SweepOptions, claim_study_dir, create_study, default_study_dir, recorded_options, resume_study, sweep_lock

    if args.resume and args.output:
        raise FomoError("give --resume DIR (continue that study) or --output DIR (a new one), not both")
    if args.reuse and args.confirm is not None:
        raise FomoError("--reuse copies finished runs into a grid study being run; not with --confirm")
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
        if args.reuse:
            raise FomoError("--reuse: a search's trials are proposed as it goes; runs to copy belong to grid studies")
        from .sweep_search import sweep_search

        return sweep_search(args, study, study_file, options, spec_sets, study_dir)
    host = load_host()
    plan = plan_study(study, study_file, spec_sets, host)
    launcher = build_launcher(plan, host)

    if args.dry_run:
        index = resume_study(plan, study_dir, options, write=False)[0] if study_dir is not None else None
        own = study_dir or (Path(args.output) if args.output else None)
        reusable = frozenset(find_donors([Path(path) for path in args.reuse], own)) if args.reuse else frozenset()
        print_points(plan, index, study.launcher.name, launcher.describe(), reusable)
        return 0

    launcher.check()
    reporter = Reporter(enabled=True)
    if study_dir is None:
        study_dir = Path(args.output) if args.output else default_study_dir(plan)
        claim_study_dir(study_dir)
        with sweep_lock(study_dir):
            index = create_study(plan, study_dir, options)
            index = reuse_runs(index, [Path(path) for path in args.reuse], reporter)
            return sweep_grid(index, launcher, study.launcher.name, reporter)
    with sweep_lock(study_dir):
        index, notes = resume_study(plan, study_dir, options)
        for note in notes:
            reporter.line(f"note: {note}")
        index = reuse_runs(index, [Path(path) for path in args.reuse], reporter)
        return sweep_grid(index, launcher, study.launcher.name, reporter)
