"""One module per ``fomo-host`` subcommand; each exposes ``add_parser(subparsers)``."""

COMMAND_MODULES: tuple[str, ...] = ("run", "validate", "plugins", "schedule")
"""Subcommands in the order ``fomo-host --help`` lists them."""
