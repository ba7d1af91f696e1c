"""The ``local`` launcher: runs as subprocesses of the sweep, several at a time, CPU threads and GPUs split between them."""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from fomo_host.api import FomoError, Launcher, LaunchEvents, RunProcess, RunRequest, start_run, stop_runs, thread_variables

from .params import LocalParams


def visible_gpus() -> list[str]:
    """This process's GPUs as CUDA_VISIBLE_DEVICES names them (so a run's own CUDA_VISIBLE_DEVICES picks among the same ones)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip() and name.strip() != "-1"]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LocalLauncher(Launcher):
    """N runs at a time as subprocesses of the sweep on this machine.

    CPU threads are split between the concurrent runs, and on a GPU machine each
    run gets its own GPU(s) through CUDA_VISIBLE_DEVICES; a run over several GPUs
    is started with ``accelerate launch``, one process per GPU.
    """

    def __init__(self, params: LocalParams) -> None:
        self.params = params

    @cached_property
    def gpus(self) -> list[str]:
        return list(self.params.gpus) if self.params.gpus is not None else visible_gpus()

    @property
    def gpus_per_run(self) -> int:
        return self.params.gpus_per_run if self.params.gpus_per_run is not None else (1 if self.gpus else 0)

    @property
    def max_parallel(self) -> int:
        if self.params.max_parallel is not None:
            return self.params.max_parallel
        return max(1, len(self.gpus) // self.gpus_per_run) if self.gpus_per_run else 1

    @property
    def threads_per_run(self) -> int:
        return self.params.threads_per_run or max(1, cpu_cores() // self.max_parallel)

    def check(self) -> None:
        needed = self.max_parallel * self.gpus_per_run
        if needed > len(self.gpus):
            have = f"{len(self.gpus)} ({', '.join(self.gpus)})" if self.gpus else "none"
            raise FomoError(
                f"launcher local: max_parallel {self.max_parallel} x gpus_per_run {self.gpus_per_run} needs {needed} GPUs; "
                f"visible GPUs: {have}"
            )

    def describe(self) -> str:
        text = f"{self.max_parallel} at a time, {self.threads_per_run} CPU thread{'s' if self.threads_per_run > 1 else ''} each"
        if self.gpus_per_run:
            text += f", {self.gpus_per_run} GPU{'s' if self.gpus_per_run > 1 else ''} each (of {', '.join(self.gpus)})"
        return text

    def _placement(self, gpus: list[str]) -> dict[str, str]:
        env = thread_variables(self.threads_per_run)
        if self.gpus or self.params.gpus_per_run == 0:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        return env

    def launch(self, requests: Sequence[RunRequest], events: LaunchEvents, work_dir: Path) -> None:
        waiting = deque(requests)
        free = list(self.gpus)
        running: dict[int, tuple[RunProcess, RunRequest, list[str]]] = {}
        ended: queue.Queue[tuple[int, int]] = queue.Queue()

        def wait_for(run: RunProcess) -> None:
            ended.put((run.pid, run.process.wait()))

        try:
            while waiting or running:
                while waiting and len(running) < self.max_parallel:
                    request = waiting.popleft()
                    gpus, free = free[: self.gpus_per_run], free[self.gpus_per_run :]
                    try:
                        run = start_run(request, processes=max(1, self.gpus_per_run), env=self._placement(gpus))
                    except Exception as exc:  # one run that cannot start must not stop the others
                        free += gpus
                        events.finished(request, None, f"cannot start the run: {type(exc).__name__}: {exc}")
                        continue
                    running[run.pid] = (run, request, gpus)
                    events.started(request, f"pid {run.pid}" + (f", GPU {','.join(gpus)}" if gpus else ""))
                    threading.Thread(target=wait_for, args=(run,), name=f"wait-{request.job_name}", daemon=True).start()
                try:
                    pid, code = ended.get(timeout=1.0)
                except queue.Empty:
                    continue
                run, request, gpus = running.pop(pid)
                run.poll()
                free += gpus
                events.finished(request, code)
        except BaseException:
            stop_runs([run for run, _, _ in running.values()])
            for run, request, _ in running.values():
                events.finished(request, run.process.returncode)
            raise
