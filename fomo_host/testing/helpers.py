"""Helpers for plugins' own tests: components of the installed plugins, specs, task optimizers, the CLI.

Everything here goes through the same code the host runs: params are validated as a
spec's are (nested component choices included), components are built by their
registered factories, a task's optimizer is built as a run builds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from ..components import Ordering, ParamGroup
from ..data import Concept
from ..plugins import installed_plugins
from ..registry import Component
from ..spec import OptimizerSection, RunSpec
from ..spec_loading import build_spec


def component(kind: str, name: str) -> Component:
    """A registered component of the installed plugins (a one-line error listing the available names if absent)."""
    return installed_plugins().registry.get(kind, name)


def validate_params(kind: str, name: str, params: Mapping[str, Any] | None = None, schema_only: bool = False) -> BaseModel:
    """A component's params validated as a spec's are (raises pydantic's ValidationError)."""
    return component(kind, name).validate_params(dict(params or {}), {"schema_only": schema_only})


def build_component(kind: str, name: str, params: Mapping[str, Any] | None = None, *context: Any) -> Any:
    """A component built by its registered factory from validated params: ``factory(params, *context)``
    (models, datasets and orderings take a :class:`BuildContext`)."""
    return component(kind, name).factory(validate_params(kind, name, params), *context)


def make_spec(table: Mapping[str, Any], overrides: Sequence[str] = (), components: bool = True) -> RunSpec:
    """A spec from its tables (and ``--set`` style overrides), as ``fomo-host validate`` checks it; ``components=False``
    checks the spec's own keys only, not the named components' params (whose plugins then need not be installed)."""
    return build_spec(dict(table), list(overrides), installed_plugins().registry if components else None)


def lifecycle_hooks() -> Any:
    """The lifecycle hooks of the installed plugins (``hooks.on_run_start(...)``, ...), called as a run calls them; the
    host's logger dispatch among them, so a spec's ``run.loggers`` are built and driven as in a run."""
    return installed_plugins().hook


def task_optimizer(
    parameters: Sequence[tuple[str, nn.Parameter]],
    optimizer: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    groups: Sequence[ParamGroup] | None = None,
) -> torch.optim.Optimizer:
    """The optimizer a run builds for a task training ``parameters`` (named as the model names them), with the spec's
    ``[optimizer]`` table ``optimizer`` (defaults as in a spec): the named optimizer component of the installed
    plugins over ``groups`` (default: one group of all), each split into matrices and 1-d tensors as the host splits it."""
    from ..engine.training import TaskOptimizers
    from ..registry import default_role
    from ..resolve import resolve_component

    registry = installed_plugins().registry
    table = dict(optimizer or {})
    if "name" not in table:
        table["name"] = registry.declared(default_role("optimizer"))[0]
    section = OptimizerSection.model_validate(table)
    resolved = resolve_component(registry, "optimizer", section, "optimizer")
    named = list(parameters)
    chosen = list(groups) if groups is not None else [ParamGroup([parameter for _, parameter in named])]
    return TaskOptimizers(section, resolved.build(), torch.device(device)).build(chosen, {id(p): name for name, p in named})


def stream_tasks(concepts: Sequence[Concept], ordering: Ordering, num_tasks: int) -> list[list[Concept]]:
    """The tasks a run would train: the ordering's result, cut by the host (or the ordering's own tasks), checked."""
    from ..engine.stream import build_tasks

    return build_tasks(concepts, ordering, num_tasks)


def run_cli(*arguments: str) -> int:
    """``fomo-host ARGUMENTS`` in this process; returns the exit status (2 for a user error, printed as one line)."""
    from ..cli import main

    return main(list(arguments))


def read_checkpoint(run_dir: Path) -> Any:
    """A run's checkpoint: ``model`` (the state the next task trains from), ``method`` and ``merger`` (their states)."""
    from ..engine.checkpoint import Checkpoint

    return Checkpoint.load(Path(run_dir))
