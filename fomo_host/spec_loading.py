"""Reading a spec against the installed plugins: the ``--set`` overrides, the plugin-declared defaults, every component's params.

:mod:`fomo_host.spec` holds the spec's models alone (it knows no plugin); this module joins them to a registry:
TOML -> overrides applied to the raw tables -> the keys a spec leaves out filled with the defaults the plugins
declare -> :class:`~fomo_host.spec.RunSpec` -> every component's ``params`` validated against its own ``Params``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import SpecError
from .plugins import installed_plugins
from .registry import Registry, default_role
from .resolve import resolve_components
from .spec import (
    RunSpec,
    apply_override,
    check_nesting,
    format_validation_error,
    parse_override,
    read_toml,
    refuse_booleans_for_numbers,
    refuse_non_finite,
)


def load_spec(path: Path, overrides: Sequence[str] = (), registry: Registry | None = None, schema_only: bool = False) -> RunSpec:
    """Read, override and validate a spec; with a registry, validate every component's params too."""
    raw = read_toml(path)
    return build_spec(raw, overrides, registry, source=str(path), schema_only=schema_only)


def build_spec(
    raw: dict[str, Any], overrides: Sequence[str] = (), registry: Registry | None = None, source: str = "spec", schema_only: bool = False
) -> RunSpec:
    raw = copy.deepcopy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(raw, keys, value)
    check_nesting(raw, source)
    refuse_non_finite(raw, source)
    refuse_booleans_for_numbers(RunSpec, raw, source)
    fill_defaults(raw, registry, source)
    try:
        spec = RunSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: {format_validation_error(exc)}") from None
    # a string such as "inf" validates as a float: look at the validated values too
    refuse_non_finite(spec, source)
    if registry is not None:
        resolve_components(spec, registry, source, schema_only=schema_only)
    return spec


DEFAULTED: dict[tuple[str, ...], str] = {
    ("data", "ordering"): "ordering",
    ("method",): "method",
    ("optimizer", "name"): "optimizer",
    ("scheduler",): "scheduler",
    ("merger",): "merger",
    ("evaluation", "metrics"): "metric",
}
"""Spec keys a spec may leave out, -> the kind whose plugin-declared default fills them (``register(..., default=True)``).
The host names no component itself: what a spec gets by default is what the installed plugins declare."""


def fill_defaults(raw: dict[str, Any], registry: Registry | None, source: str) -> None:
    """Fill the component keys the spec leaves out with the installed plugins' declared defaults.

    Without ``registry`` the installed plugins' is used (a spec read for its keys alone still gets the same defaults).
    A key no plugin declares a default for must be given; two plugins declaring one is a one-line error.
    """
    for path, kind in DEFAULTED.items():
        table: Any = raw
        for part in path[:-1]:
            if not isinstance(table, dict):
                break
            table = table.setdefault(part, {}) if part in ("evaluation", "optimizer") else table.get(part)
        if not isinstance(table, dict) or path[-1] in table:
            continue
        if registry is None:
            registry = installed_plugins().registry
        names = registry.declared(default_role(kind))
        key = ".".join(path)
        if not names:
            raise SpecError(
                f"{source}: {key}: not given, and no installed plugin declares a default {kind}; name one "
                f"(`fomo-host plugins --kind {kind}` lists them)"
            )
        refs = [{"name": name} for name in names]
        # a section with settings of its own ([optimizer]) gets the default's name; others the whole reference
        table[path[-1]] = names[0] if path[-1] == "name" else refs if kind == "metric" else refs[0]
