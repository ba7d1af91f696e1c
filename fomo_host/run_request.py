"""One run of a study as a launcher receives it (:class:`RunRequest`), and the ``fomo-host run`` command line that runs it.

Light on purpose (no torch): the sweep builds requests, a Slurm job or a Ray task unpickles one, and the reports
that read a study import this module. The launcher contract that receives it is in :mod:`fomo_host.components`.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .run_directory import has_checkpoint


@dataclass(frozen=True)
class RunRequest:
    """One run of a study, as a launcher receives it (picklable, so it can travel to a Ray worker or a Slurm job)."""

    key: str
    """Unique in the study, e.g. ``03-lora/seed-1``; :attr:`job_name` is the same without slashes."""
    label: str
    """The human label of the run's point (variant label or grid values), the same for all its seeds."""
    seed: int
    spec: Path
    """The study's base spec file (absolute)."""
    overrides: tuple[str, ...]
    """``KEY.PATH=VALUE`` overrides that make the base spec this run's spec (seed included)."""
    run_dir: Path
    """The run directory (absolute); an ordinary one, so ``fomo-host run --resume`` and ``report`` work on it."""
    log: Path
    """Where the run's output (stdout and stderr) goes (absolute)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables the run needs beyond the launcher's environment (the sweep's ``FOMO_*`` settings)."""

    @property
    def job_name(self) -> str:
        return self.key.replace("/", ".")

    def has_checkpoint(self) -> bool:
        return has_checkpoint(self.run_dir)

    def arguments(self) -> list[str]:
        """The ``fomo-host`` arguments: ``--resume`` where the run directory holds a checkpoint, else a fresh ``--output``."""
        arguments = ["run", str(self.spec)]
        for override in self.overrides:
            arguments += ["--set", override]
        where = ["--resume", str(self.run_dir)] if self.has_checkpoint() else ["--output", str(self.run_dir)]
        return [*arguments, *where, "--quiet"]

    def command(self, processes: int = 1) -> list[str]:
        """The command line: ``python -m fomo_host.cli ...``, or through ``accelerate launch`` over ``processes`` GPUs."""
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        program = [sys.executable, "-m", "fomo_host.cli"]
        if processes > 1:
            program = [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--multi_gpu",
                "--num_machines",
                "1",
                "--num_processes",
                str(processes),
                # runs started side by side on one machine must not share a rendezvous port
                "--main_process_port",
                str(free_port()),
                "-m",
                "fomo_host.cli",
            ]
        return [*program, *self.arguments()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
