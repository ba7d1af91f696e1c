"""``fomo-host new-plugin NAME --kind KIND``: a new plugin package that installs and passes its conformance suite as written."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..scaffold import TEMPLATES, write_plugin


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "new-plugin",
        help="write a new plugin package (pyproject with the entry point, Params, component, README, conformance test, noxfile, CI)",
        description="Write the package NAME into DIR/NAME: it installs with `pip install -e DIR/NAME` and passes its kind's "
        "conformance suite as written; edit the component from there.",
    )
    parser.add_argument("name", metavar="NAME", help="the distribution and component name, e.g. my-schedule")
    parser.add_argument(
        "--kind",
        required=True,
        choices=sorted(TEMPLATES),
        metavar="KIND",
        help=f"the kind of component it provides: {', '.join(sorted(TEMPLATES))}",
    )
    parser.add_argument("--dir", default=".", metavar="DIR", help="the folder to write the package into (default: here)")
    parser.set_defaults(handler=command_new_plugin)


def command_new_plugin(args: argparse.Namespace) -> int:
    target = write_plugin(args.name, args.kind, Path(args.dir))
    print(f"wrote {target}; next: pip install -e '{target}[testing]' && pytest {target}")
    return 0
