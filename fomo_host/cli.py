"""The ``fomo-host`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import FomoError
from .plugins import PluginHost, load_plugins, warn_about_errors
from .progress import Reporter
from .spec import RunSpec, load_spec

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _load(quiet: bool = False) -> PluginHost:
    host = load_plugins()
    if not quiet and _is_main_process():
        warn_about_errors(host)
    return host


def _spec(args: argparse.Namespace, host: PluginHost) -> RunSpec:
    return load_spec(Path(args.spec), list(args.set or []), host.registry)


def default_run_dir(spec: RunSpec) -> Path:
    """``output_dir/name-YYYYmmdd-HHMMSS``, with a counter if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}"
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = spec.run.output_dir / f"{spec.run.name}-{stamp}-{counter}"
    return candidate


def command_run(args: argparse.Namespace) -> int:
    from .engine.run import ContinualRun, prepare

    host = _load()
    spec = _spec(args, host)
    reporter = Reporter(enabled=_is_main_process() and not args.quiet)
    if args.resume:
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise FomoError(f"--resume {run_dir}: no such run directory")
    else:
        run_dir = Path(args.output) if args.output else default_run_dir(spec)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FomoError(f"{run_dir} exists and is not empty; pass --resume {run_dir} to continue it, or another --output")
    setup = prepare(host, spec, reporter)
    reporter.line(
        f"run {run_dir}: {len(setup.tasks)} tasks x {setup.steps_per_task} steps, batch {spec.run.batch_size}, "
        f"method {spec.method.name}, merger {spec.merger.name}, device {setup.runtime.device}"
        + (f" x{setup.runtime.world_size}" if setup.runtime.world_size > 1 else "")
    )
    run = ContinualRun(host, setup, run_dir, reporter)
    try:
        summary = run.execute(resume=bool(args.resume))
    except KeyboardInterrupt:
        if _is_main_process():
            print(f"\ninterrupted; continue with: fomo-host run {args.spec} --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if _is_main_process():
        _print_trajectory(run_dir, reporter)
        print(f"results: {run_dir / 'results.jsonl'}\nsummary: {run_dir / 'summary.json'}")
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def _print_trajectory(run_dir: Path, reporter: Reporter) -> None:
    from rich.console import Console
    from rich.table import Table

    from .results import read_records

    table = Table(title=f"trajectory of {run_dir.name}")
    for column in ("task", "samples seen", "A_KA", "A_ZS", "GM"):
        table.add_column(column, justify="right")
    for record in read_records(run_dir):
        label = "base" if record["task"] < 0 else str(record["task"] + 1)
        table.add_row(label, f"{record['samples_seen']:,}", f"{record['A_KA']:.4f}", f"{record['A_ZS']:.4f}", f"{record['GM']:.4f}")
    Console().print(table)


def command_validate(args: argparse.Namespace) -> int:
    from .engine.run import prepare

    host = _load()
    spec = _spec(args, host)
    setup = prepare(host, spec, Reporter(enabled=False), warm=False) if not args.schema_only else None
    print(f"{args.spec}: valid")
    if setup is not None:
        data = setup.data
        print(
            f"  {len(setup.tasks)} tasks x {setup.steps_per_task} steps of batch {spec.run.batch_size}; "
            f"{sum(len(t) for t in setup.tasks)} concepts from {len(data.adaptation)} adaptation sets; "
            f"{len(data.zero_shot)} zero-shot sets; pretraining pool: {', '.join(d.name for d in data.pretraining) or 'none'}"
        )
    return 0


def command_plugins(args: argparse.Namespace) -> int:
    host = _load(quiet=args.json)
    distributions: dict[str, dict] = {}
    for record in host.plugins:
        entry = distributions.setdefault(
            record.distribution, {"distribution": record.distribution, "version": record.version, "components": {}, "errors": []}
        )
        if record.error:
            entry["errors"].append(record.error)
    for component in host.registry:
        entry = distributions[component.provider.distribution]
        entry["components"].setdefault(component.kind, []).append(component.name)
    rows = sorted(distributions.values(), key=lambda e: e["distribution"])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fomo-host plugins")
    for column in ("distribution", "version", "components"):
        table.add_column(column)
    for row in rows:
        parts = [f"{kind}: {', '.join(names)}" for kind, names in row["components"].items()]
        parts += [f"[red]error: {error}[/red]" for error in row["errors"]]
        table.add_row(row["distribution"], row["version"], "\n".join(parts) or "-")
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fomo-host", description="Continual multimodal pretraining of CLIP models, as plugins.")
    parser.add_argument("--version", action="version", version=f"fomo-host {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_spec(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("spec", help="the spec file (TOML)")
        sub.add_argument(
            "--set", action="append", metavar="KEY.PATH=VALUE", help="override a spec value (TOML syntax), e.g. optimizer.lr=1e-4"
        )

    run = commands.add_parser("run", help="run a whole continual stream")
    with_spec(run)
    run.add_argument("--output", metavar="DIR", help="run directory (default: run.output_dir/run.name-TIMESTAMP)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--json", action="store_true", help="print the summary as JSON at the end")
    run.set_defaults(handler=command_run)

    validate = commands.add_parser("validate", help="check a spec (and build its data and stream) without training")
    with_spec(validate)
    validate.add_argument("--schema-only", action="store_true", help="check keys and component params only; build nothing")
    validate.set_defaults(handler=command_validate)

    plugins = commands.add_parser("plugins", help="list installed plugins and their components")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=command_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except FomoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
