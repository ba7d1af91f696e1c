"""``fomo-host plugins``: installed plugins and the components each registered."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import load_host


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "plugins", help="list installed plugins and their components (exit status 1 when a plugin is broken or two claim one name)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=command_plugins)


def command_plugins(args: argparse.Namespace) -> int:
    host = load_host(quiet=args.json)
    distributions: dict[str, dict[str, Any]] = {}
    for record in host.plugins:
        entry = distributions.setdefault(
            record.distribution, {"distribution": record.distribution, "version": record.version, "components": {}, "errors": []}
        )
        if record.error:
            entry["errors"].append(record.error)
    for component in host.registry:
        entry = distributions[component.provider.distribution]
        entry["components"].setdefault(component.kind, []).append(component.name)
    for (kind, name), providers in host.registry.conflicts().items():
        for provider in providers:
            others = " and ".join(str(other) for other in providers if other != provider)
            distributions[provider.distribution]["errors"].append(f"{kind} {name!r} is also registered by {others}: usable by neither")
    for record in host.plugins:
        plugin = host.manager.get_plugin(f"{record.distribution}:{record.name}")
        if plugin is None:
            continue
        observed = [caller.name for caller in host.manager.get_hookcallers(plugin) or [] if not caller.name.startswith("register_")]
        if observed:
            distributions[record.distribution].setdefault("hooks", []).extend(sorted(observed))
    rows = sorted(distributions.values(), key=lambda e: e["distribution"])
    # a broken installation is a failure a script (CI, a launcher) must see
    status = 1 if host.problems else 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return status
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fomo-host plugins")
    for column in ("distribution", "version", "components"):
        table.add_column(column)
    for row in rows:
        parts = [f"{kind}: {', '.join(names)}" for kind, names in row["components"].items()]
        if row.get("hooks"):
            parts.append(f"hooks: {', '.join(row['hooks'])}")
        parts += [f"[red]error: {error}[/red]" for error in row["errors"]]
        table.add_row(row["distribution"], row["version"], "\n".join(parts) or "-")
    Console().print(table)
    return status
