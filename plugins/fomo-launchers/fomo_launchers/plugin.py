"""Registers the ``local``, ``ray`` and ``slurm`` launchers; ray and submitit are imported only when a study uses them."""

from __future__ import annotations

from typing import Any

from fomo_host.api import hookimpl

from .local import LocalLauncher, LocalParams
from .ray_launcher import RayLauncher, RayParams
from .slurm import SlurmLauncher, SlurmParams


@hookimpl
def register_launchers(register: Any) -> None:
    register(name="local", factory=LocalLauncher, params=LocalParams)
    register(name="ray", factory=RayLauncher, params=RayParams)
    register(name="slurm", factory=SlurmLauncher, params=SlurmParams)
