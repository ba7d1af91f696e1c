"""What runs on a cluster's node for one run: a Slurm job's callable and a Ray task's body.

Kept apart from the launchers, which subclass the host's ``Launcher`` contract (its module loads torch): a job or a
task only starts ``fomo-host run`` and waits for it, so unpickling one on a node imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from fomo_host.api import FomoError, RunRequest, execute_run, thread_variables

SLURM_INSTALL_HINT = "pip install 'fomo-launchers[slurm]' (or: pip install submitit)"


def submitit() -> Any:
    try:
        import submitit as module
    except ImportError:
        raise FomoError(f"launcher slurm needs the submitit package: {SLURM_INSTALL_HINT}") from None
    return module


class StudyJob:
    """The callable a job runs: ``fomo-host run`` for one request. Checkpointable: at its time limit it is requeued with the
    same arguments, and the requeued job resumes the run from its checkpoint (the run directory decides)."""

    def __init__(self, request: RunRequest, processes: int, threads: int) -> None:
        self.request, self.processes, self.threads = request, processes, threads

    def __call__(self) -> int:
        return execute_run(self.request, processes=self.processes, env=thread_variables(self.threads))

    def checkpoint(self) -> Any:
        return submitit().helpers.DelayedSubmission(self)


def run_task(request: RunRequest, processes: int, threads: int) -> int:
    """The body of a run's Ray task: start ``fomo-host run`` on the worker's node and wait for it."""
    return execute_run(request, processes=processes, env=thread_variables(threads))
