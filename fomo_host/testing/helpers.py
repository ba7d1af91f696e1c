"""Helpers for plugins' own tests: components of the installed plugins, specs, optimizer requests, the CLI.

Everything here goes through the same code the host runs: params are validated as a
spec's are (nested component choices included), components are built by their
registered factories, the optimizer request is the one a run hands a method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from ..components import OptimizerRequest, Ordering
from ..data import Concept
from ..plugins import installed_plugins
from ..registry import Component
from ..spec import OptimizerSection, RunSpec, build_spec


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


def optimizer_request(
    parameters: Sequence[tuple[str, nn.Parameter]], optimizer: Mapping[str, Any] | None = None, device: str | torch.device = "cpu"
) -> OptimizerRequest:
    """The request a run hands :meth:`UpdateMethod.build_optimizer` for a task training ``parameters``, with the
    spec's ``[optimizer]`` table ``optimizer`` (defaults as in a spec)."""
    from ..engine.training import OptimizerFactory

    section = OptimizerSection.model_validate(dict(optimizer or {}))
    return OptimizerFactory(section, torch.device(device)).request(list(parameters))


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
