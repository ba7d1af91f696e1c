"""``fomo-host validate``: check a spec, and build its data and stream, without training."""

from __future__ import annotations

import argparse

from ..progress import Reporter
from .common import add_spec_arguments, load_host, read_spec


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("validate", help="check a spec (and build its data and stream) without training")
    add_spec_arguments(parser)
    parser.add_argument(
        "--schema-only", action="store_true", help="check keys and params only, without looking at data or checkpoint files; build nothing"
    )
    parser.set_defaults(handler=command_validate)


def command_validate(args: argparse.Namespace) -> int:
    from ..output_path import check_output_path
    from ..run_directory import longest_default_run_dir

    host = load_host()
    spec = read_spec(args, host)
    # where `fomo-host run` would write: refused here as run would refuse it, before any data is built
    check_output_path(longest_default_run_dir(spec), "run.output_dir/run.name:")
    if args.schema_only:  # the engine (torch) stays unimported: a schema check answers in well under a second
        from ..engine.preflight import check_schema_level
        from ..resolve import resolve_components

        check_schema_level(host, spec, resolve_components(spec, host.registry, schema_only=True))
        print(f"{args.spec}: valid")
        return 0
    from ..engine.setup import prepare

    # progress (on stderr) shows the first decode of large datasets, which validation builds
    setup = prepare(host, spec, Reporter(), warm=False)
    print(f"{args.spec}: valid")
    data = setup.data
    print(
        f"  {len(setup.tasks)} tasks x {setup.steps_per_task} steps of batch {spec.run.batch_size}; "
        f"{sum(len(t) for t in setup.tasks)} concepts from {len(data.adaptation)} adaptation sets; "
        f"{len(data.zero_shot)} zero-shot sets; pretraining pool: {', '.join(d.name for d in data.pretraining) or 'none'}"
    )
    return 0
