"""One module per ``fomo-host`` subcommand; each exposes ``add_parser(subparsers)``."""

COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "sweep",
    "validate",
    "plugins",
    "schedule",
    "budget",
    "report",
    "compare",
    "drift",
    "findings",
    "export",
    "evaluate",
    "new_plugin",
    "update",
    "releases",
)
"""Subcommands in the order ``fomo-host --help`` lists them."""
