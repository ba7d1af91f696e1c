"""How a launcher starts a run: as a ``fomo-host run`` process of its own, to the end (:func:`execute_run`) or with a
handle (:func:`start_run`), and how several are stopped together.

The launcher contract itself (:class:`~fomo_host.components.Launcher`, the :class:`~fomo_host.components.RunRequest`
it receives, :class:`~fomo_host.components.LaunchEvents`) is in :mod:`fomo_host.components` with every other kind's.
Nothing here imports torch: a launcher's wrapper process (a Slurm job, a Ray task) only starts and watches a process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING

from ..locking import lock_holder

if TYPE_CHECKING:
    from ..run_request import RunRequest

STOP_GRACE_S = 20.0
"""How long a run may take to stop after SIGINT (it prints where to resume) before it is killed."""


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
