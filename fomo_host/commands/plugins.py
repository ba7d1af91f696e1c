"""``fomo-host plugins``: installed plugins and the components each registered; ``plugins NAME``: a component's params."""

from __future__ import annotations

import argparse
import difflib
import json
from typing import Any

from ..errors import FomoError
from ..registry import KINDS, Component, Registry
from .common import load_host


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "plugins",
        help="list installed plugins and their components (exit status 1 when a plugin is broken or two claim one name); "
        "with NAME, a component's description and params",
        description="Without NAME: every installed plugin distribution, its version and the components it registered. "
        "With NAME (or --params: every component): the description and the params, with types, defaults and ranges.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="a component's name, e.g. lora or ties")
    parser.add_argument("--kind", choices=KINDS, help="only components of this kind (for a name several kinds use)")
    parser.add_argument("--params", action="store_true", help="describe every component (of --kind), params included")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=command_plugins)


def command_plugins(args: argparse.Namespace) -> int:
    host = load_host(quiet=args.json)
    if args.name is not None or args.params:
        return show_components(select(host.registry, args.name, args.kind), args.json)
    distributions: dict[str, dict[str, Any]] = {}
    for record in host.plugins:
        entry = distributions.setdefault(
            record.distribution, {"distribution": record.distribution, "version": record.version, "components": {}, "errors": []}
        )
        if record.error:
            entry["errors"].append(record.error)
    for component in host.registry:
        if args.kind is not None and component.kind != args.kind:
            continue
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
    if args.kind is not None:
        rows = [row for row in rows if row["components"] or row["errors"]]
    # a broken installation is a failure a script (CI, a launcher) must see
    status = 1 if host.problems else 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return status
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fomo-host plugins (fomo-host plugins NAME describes a component)")
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


SPEC_PLACES = {
    "model": "model.params",
    "dataset": "data.sources.N.params",
    "ordering": "data.ordering.params",
    "method": "method.params",
    "optimizer": "optimizer.params",
    "scheduler": "scheduler.params",
    "merger": "merger.params",
    "merge_operator": "merger.params.operator.params",
    "metric": "evaluation.metrics.N.params",
    "logger": "run.loggers.N.params",
}
"""Where a spec gives each kind's params."""


def select(registry: Registry, name: str | None, kind: str | None) -> list[Component]:
    """The components called ``name`` (every component without a name), of ``kind`` if given; none is a one-line error."""
    found = [c for c in registry if (name is None or c.name == name) and (kind is None or c.kind == kind)]
    if found:
        return found
    for conflict_kind, conflict_name in registry.conflicts():
        if conflict_name == name and kind in (None, conflict_kind):
            registry.get(conflict_kind, conflict_name)  # raises, naming the plugins that both claim it
    known = sorted({c.name for c in registry if kind is None or c.kind == kind})
    close = difflib.get_close_matches(name or "", known, n=3)
    what = f"{kind} {name!r}" if kind else f"component {name!r}"
    hint = f"; did you mean {', '.join(close)}?" if close else f"; installed: {', '.join(known) or 'none'}"
    raise FomoError(f"no {what} is installed{hint}")


def show_components(components: list[Component], as_json: bool) -> int:
    """Each component's kind, name, provider, description and a table of its params."""
    from ..describe import describe_params

    if as_json:
        records = [
            {
                "kind": c.kind,
                "name": c.name,
                "distribution": c.provider.distribution,
                "version": c.provider.version,
                "description": c.description,
                "params": [row.as_record() for row in describe_params(c.params)],
            }
            for c in components
        ]
        print(json.dumps(records, indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for index, component in enumerate(components):
        if index:
            console.print()
        provider = component.provider
        console.print(f"[bold]{component.kind} {escape(component.name)}[/bold] ({escape(provider.distribution)} {provider.version})")
        console.print(escape(component.description or "(no description)"))
        rows = describe_params(component.params)
        if not rows:
            console.print("params: none")
            continue
        place = SPEC_PLACES.get(component.kind)
        console.print(f"params: {place}" if place else "params:")
        table = Table()
        for column in ("key", "type", "default", "range", "description"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(escape(text) for text in (row.key, row.type, row.default, row.range, row.description)))
        console.print(table)
    return 0
