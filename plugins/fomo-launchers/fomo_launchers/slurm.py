"""The ``slurm`` launcher: each run a Slurm job (all of a sweep's runs one job array), submitted through submitit."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fomo_host.api import FomoError, Launcher, LaunchEvents, RunRequest

from .jobs import StudyJob, submitit
from .params import SlurmParams

CANCEL_GRACE_S = 30.0


class SlurmLauncher(Launcher):
    """Each run is a Slurm job with its partition, time limit, GPUs, CPUs and memory; a sweep's runs go as one job array.

    Jobs run ``fomo-host run`` on the compute nodes, so the study directory must be
    on a filesystem the nodes share and the nodes need fomo-host and the study's
    plugins installed (``setup`` can activate an environment).
    """

    def __init__(self, params: SlurmParams) -> None:
        self.params = params

    def check(self) -> None:
        submitit()
        if self.params.cluster == "slurm":
            import shutil

            missing = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
            if missing:
                raise FomoError(
                    f"launcher slurm: no {' or '.join(missing)} command here; run the sweep on a Slurm login node "
                    "(or set cluster = 'local')"
                )

    def describe(self) -> str:
        params = self.params
        where = f"partition {params.partition}" if params.partition else "the default partition"
        if params.cluster == "local":
            where = "submitit's local executor"
        resources = f"{params.cpus_per_run} CPU" + (f", {params.gpus_per_run} GPU" if params.gpus_per_run else "")
        if params.mem_gb:
            resources += f", {params.mem_gb:g} GB"
        return f"{where}, {resources} and {params.time_min} min per run, at most {params.array_parallelism} at a time"

    def _executor(self, folder: Path) -> Any:
        module, params = submitit(), self.params
        processes = params.gpus_per_run if params.gpus_per_run >= 2 else 1
        common: dict[str, Any] = {"gpus_per_node": params.gpus_per_run, "signal_delay_s": params.signal_delay_s}
        if params.setup:
            common["setup"] = list(params.setup)
        if params.cluster == "local":
            executor = module.LocalExecutor(folder=folder, max_num_timeout=params.max_requeues)
            executor.update_parameters(timeout_min=params.time_min, **common)
            return executor, processes
        executor = module.SlurmExecutor(folder=folder, max_num_timeout=params.max_requeues)
        options: dict[str, Any] = {
            "time": params.time_min,
            "cpus_per_task": params.cpus_per_run,
            "array_parallelism": params.array_parallelism,
            "job_name": params.job_name,
            "stderr_to_stdout": True,
            **common,
        }
        for name in ("partition", "account", "qos", "constraint", "exclude"):
            if getattr(params, name):
                options[name] = getattr(params, name)
        if params.mem_gb:
            options["mem"] = f"{int(params.mem_gb * 1024)}M"
        if params.additional:
            options["additional_parameters"] = dict(params.additional)
        executor.update_parameters(**options)
        return executor, processes

    def launch(self, requests: Sequence[RunRequest], events: LaunchEvents, work_dir: Path) -> None:
        params = self.params
        executor, processes = self._executor(work_dir / "submitit")
        jobs = [StudyJob(request, processes, params.cpus_per_run) for request in requests]
        live: dict[Any, RunRequest] = {}
        waiting: list[StudyJob] = []
        try:
            if params.cluster == "slurm":
                # one array job: Slurm itself keeps at most array_parallelism running
                for job, submitted in zip(jobs, self._submit(executor, jobs, events), strict=True):
                    if submitted is not None:
                        live[submitted] = job.request
            else:
                # the local executor starts every job it is given at once: hand them over array_parallelism at a time
                waiting = list(jobs)
            poll = params.poll_s if params.cluster == "slurm" else 0.5
            while waiting or live:
                while waiting and len(live) < params.array_parallelism:
                    job = waiting.pop(0)
                    submitted = self._submit(executor, [job], events)[0]
                    if submitted is not None:
                        live[submitted] = job.request
                for submitted in [submitted for submitted in live if submitted.done()]:
                    request = live.pop(submitted)
                    self._report(submitted, request, events)
                if live:
                    time.sleep(poll)
        except BaseException:
            self._cancel(live, events)
            raise

    def _submit(self, executor: Any, jobs: list[StudyJob], events: LaunchEvents) -> list[Any]:
        try:
            submitted = executor.submit_array(jobs) if len(jobs) > 1 else [executor.submit(jobs[0])]
        except Exception as exc:  # sbatch refused (a wrong partition, a limit): every run of this submission failed
            for job in jobs:
                events.finished(job.request, None, f"submission failed: {first_line(exc)}")
            return [None] * len(jobs)
        for job, handle in zip(jobs, submitted, strict=True):
            events.started(job.request, f"{'slurm' if self.params.cluster == 'slurm' else 'submitit local'} job {handle.job_id}")
        return submitted

    @staticmethod
    def _report(submitted: Any, request: RunRequest, events: LaunchEvents) -> None:
        problem = submitted.exception()
        if problem is None:
            events.finished(request, int(submitted.result()))
        else:  # cancelled, out of requeues, node failure: this run failed, the others go on
            events.finished(request, None, f"job {submitted.job_id} {submitted.state.lower()}: {first_line(problem)}")

    @staticmethod
    def _cancel(live: dict[Any, RunRequest], events: LaunchEvents) -> None:
        for submitted in live:
            submitted.cancel(check=False)
        deadline = time.monotonic() + CANCEL_GRACE_S
        remaining = dict(live)
        while remaining and time.monotonic() < deadline:
            for submitted in [submitted for submitted in remaining if submitted.done()]:
                events.finished(remaining.pop(submitted), 130)
            time.sleep(0.5)
        for request in remaining.values():
            events.finished(request, None, "cancelled when the sweep stopped")


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
