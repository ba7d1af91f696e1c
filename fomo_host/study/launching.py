"""The launcher contract: what ``fomo-host sweep`` hands a launcher, and the one way every launcher starts a run.

A launcher never trains anything itself: for each :class:`RunRequest` it starts
``fomo-host run`` (or ``accelerate launch ... fomo-host run`` for a run over
several GPUs) wherever it places runs, through :func:`execute_run` or
:func:`start_run`, and reports each run's start and end to the sweep through
:class:`LaunchEvents`. Whether a run starts fresh or resumes is decided when it
starts, from its run directory: a run that holds a checkpoint resumes from it,
so a run requeued by a cluster after a time limit continues where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from ..locking import lock_holder

STOP_GRACE_S = 20.0
"""How long a run may take to stop after SIGINT (it prints where to resume) before it is killed."""


def has_checkpoint(run_dir: Path) -> bool:
    # imported here: the engine pulls in torch, which a launcher's wrapper process should not pay for up front
    from ..engine.checkpoint import has_checkpoint as committed

    return committed(run_dir)


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


def prepare_run_dir(request: RunRequest) -> None:
    """Clear a run directory that never reached its first checkpoint, so the run can start again in it.

    Such a directory holds only what a run writes before its first evaluation
    (the resolved spec, the base weights); ``fomo-host run --output`` refuses a
    non-empty directory, and there is nothing in it to resume from. A directory
    another process is running is left alone: that run refuses to start twice.
    """
    if request.run_dir.is_dir() and not request.has_checkpoint() and lock_holder(request.run_dir) is None:
        shutil.rmtree(request.run_dir)
    request.run_dir.parent.mkdir(parents=True, exist_ok=True)


class RunProcess:
    """A started run: its process (the leader of its own process group) and its log."""

    def __init__(self, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.process, self._log = process, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self._log.close()
        return code

    def wait(self) -> int:
        code = self.process.wait()
        self._log.close()
        return code

    def interrupt(self) -> None:
        """Ask the run to stop as on Ctrl-C: it prints where to resume and keeps its last checkpoint."""
        if self.process.poll() is None:
            self._signal(signal.SIGINT)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        """Interrupt the run, give it ``grace_s`` to stop, then kill what is left of its process group; returns its exit status."""
        stop_runs([self], grace_s)
        return self.process.returncode

    def kill(self) -> None:
        # data-loader workers or accelerate's ranks may outlive the group's leader
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def _signal(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, number)


def stop_runs(runs: Sequence[RunProcess], grace_s: float = STOP_GRACE_S) -> None:
    """Stop several runs at once: interrupt them all, wait up to ``grace_s`` in all, then kill what is left."""
    for run in runs:
        run.interrupt()
    deadline = time.monotonic() + grace_s
    for run in runs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for run in runs:
        run.kill()


def start_run(request: RunRequest, processes: int = 1, env: Mapping[str, str] | None = None) -> RunProcess:
    """Start the run's process in its own process group, its output appended to ``request.log``.

    ``env`` adds to (and overrides) this process's environment, after ``request.env``:
    the launcher's placement (``CUDA_VISIBLE_DEVICES``, thread counts).
    """
    prepare_run_dir(request)
    request.log.parent.mkdir(parents=True, exist_ok=True)
    command = request.command(processes)
    log = open(request.log, "ab")  # noqa: SIM115 - closed by RunProcess when the run ends
    log.write(f"$ {' '.join(command)}\n".encode())
    log.flush()
    environment = {**os.environ, **request.env, **(env or {})}
    # a session of its own: the whole tree (data-loader workers, accelerate's ranks) can be stopped together,
    # and a Ctrl-C meant for the sweep reaches the runs only through the launcher, which stops them in order
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment, start_new_session=True
    )
    return RunProcess(process, log)


def execute_run(request: RunRequest, processes: int = 1, env: Mapping[str, str] | None = None) -> int:
    """Run to the end and return the exit status; if the caller is interrupted (Ctrl-C, a cancelled task), stop the run first."""
    run = start_run(request, processes, env)
    try:
        return run.wait()
    except BaseException:
        run.stop()
        raise


def thread_variables(threads: int) -> dict[str, str]:
    """Environment variables that cap a run's CPU threads (OpenMP, MKL, OpenBLAS; torch reads OMP_NUM_THREADS)."""
    value = str(max(1, int(threads)))
    return {"OMP_NUM_THREADS": value, "MKL_NUM_THREADS": value, "OPENBLAS_NUM_THREADS": value}


class LaunchEvents(Protocol):
    """How a launcher tells the sweep about its runs; safe to call from any thread."""

    def started(self, request: RunRequest, job: str) -> None:
        """The run started (or was queued on a cluster); ``job`` names it there: ``pid 4242``, ``slurm job 123_4``, ..."""

    def finished(self, request: RunRequest, returncode: int | None, error: str | None = None) -> None:
        """The run ended with ``returncode``; ``None`` when it could not be run or was lost, with ``error`` saying why."""


class Launcher(ABC):
    """Starts the runs of a study: on this machine, on a Ray cluster, as Slurm jobs, ...

    A launcher is built from its validated ``Params`` (``factory(params)``). The
    sweep calls :meth:`check` before any run starts, then :meth:`launch` once
    with every run still to do.
    """

    def check(self) -> None:  # noqa: B027 - most launchers have nothing to check
        """Raise :class:`fomo_host.errors.FomoError` (one line) if the launcher cannot run here: a missing package,
        more GPUs asked for than there are, no cluster at the address. Called before anything starts."""

    def describe(self) -> str:
        """One line for the sweep's header, e.g. ``2 runs at a time, 1 thread each``."""
        return ""

    @abstractmethod
    def launch(self, requests: Sequence[RunRequest], events: LaunchEvents, work_dir: Path) -> None:
        """Run every request once, through :func:`execute_run` or :func:`start_run`, and return when all have ended.

        Call ``events.started`` when a run starts and ``events.finished`` when it ends, for every
        request. A run that fails is reported and the others go on; a failure to start one is
        reported as ``finished(request, None, error)``, never raised. ``work_dir`` is the
        launcher's own folder in the study directory (job scripts, cluster logs). On
        ``KeyboardInterrupt`` stop the runs still going (each keeps its last checkpoint) and re-raise.
        """
