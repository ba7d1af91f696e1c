"""The ``ray`` launcher: each run a Ray task with its CPUs and GPUs declared, on an existing cluster or a local one."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fomo_host.api import FomoError, Launcher, LaunchEvents, RunRequest

from .jobs import run_task
from .params import RayParams

INSTALL_HINT = "pip install 'fomo-launchers[ray]' (or: pip install ray)"
CANCEL_GRACE_S = 30.0


class RayLauncher(Launcher):
    """Each run is a Ray task declaring its CPUs, GPUs and memory, so Ray places the runs over a cluster's nodes.

    The task starts ``fomo-host run`` on its node, so every node needs fomo-host and
    the study's plugins installed, and the study directory on a filesystem all
    nodes share.
    """

    def __init__(self, params: RayParams) -> None:
        self.params = params

    def check(self) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise FomoError(f"launcher ray needs the ray package: {INSTALL_HINT}") from None

    def describe(self) -> str:
        params = self.params
        where = f"cluster at {params.address}" if params.address else "a local Ray instance"
        text = f"{where}, {params.cpus_per_run:g} CPU"
        if params.gpus_per_run:
            text += f" and {params.gpus_per_run:g} GPU"
        if params.memory_gb_per_run:
            text += f" and {params.memory_gb_per_run:g} GB"
        text += " per run"
        return text + (f", at most {params.max_parallel} at a time" if params.max_parallel else "")

    def _connect(self) -> bool:
        """Connect to the cluster (or start a local one); True when this launcher started Ray and must stop it."""
        import ray

        if ray.is_initialized():
            return False
        params = self.params
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if params.runtime_env is not None:
            options["runtime_env"] = params.runtime_env
        if params.address is None:
            options.update(num_cpus=params.num_cpus, num_gpus=params.num_gpus)
        else:
            options["address"] = params.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = params.address or "a local instance"
            raise FomoError(f"launcher ray: cannot connect to {where}: {str(exc).splitlines()[0]}") from None
        return True

    def _check_fits(self) -> None:
        """A run that needs more than any node has would wait for ever; say so instead."""
        import ray

        params = self.params
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        fits = [
            node
            for node in nodes
            if node["Resources"].get("CPU", 0) >= params.cpus_per_run and node["Resources"].get("GPU", 0) >= params.gpus_per_run
        ]
        if nodes and not fits:
            largest = max(nodes, key=lambda node: (node["Resources"].get("GPU", 0), node["Resources"].get("CPU", 0)))["Resources"]
            raise FomoError(
                f"launcher ray: a run asks for {params.cpus_per_run:g} CPUs and {params.gpus_per_run:g} GPUs, but the largest node "
                f"has {largest.get('CPU', 0):g} CPUs and {largest.get('GPU', 0):g} GPUs"
            )

    def launch(self, requests: Sequence[RunRequest], events: LaunchEvents, work_dir: Path) -> None:
        import ray

        started_ray = self._connect()
        try:
            self._check_fits()
            self._launch(ray, requests, events)
        finally:
            if started_ray:
                ray.shutdown()

    def _launch(self, ray: Any, requests: Sequence[RunRequest], events: LaunchEvents) -> None:
        params = self.params
        processes = int(params.gpus_per_run) if params.gpus_per_run >= 2 else 1
        threads = max(1, math.floor(params.cpus_per_run))
        options: dict[str, Any] = {"num_cpus": params.cpus_per_run, "num_gpus": params.gpus_per_run, "max_retries": 0}
        if params.memory_gb_per_run:
            options["memory"] = int(params.memory_gb_per_run * 1024**3)
        task = ray.remote(run_task)
        waiting = list(requests)
        pending: dict[Any, RunRequest] = {}
        limit = params.max_parallel or len(requests)
        try:
            while waiting or pending:
                while waiting and len(pending) < limit:
                    request = waiting.pop(0)
                    reference = task.options(**options, name=request.job_name).remote(request, processes, threads)
                    pending[reference] = request
                    events.started(request, f"ray task {reference.task_id().hex()[:16]}")
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for reference in done:
                    request = pending.pop(reference)
                    try:
                        events.finished(request, int(ray.get(reference)))
                    except Exception as exc:  # the task failed (worker died, node lost): this run failed, the others go on
                        events.finished(request, None, f"ray task failed: {first_line(exc)}")
        except BaseException:
            self._cancel(ray, pending, events)
            raise

    def _cancel(self, ray: Any, pending: dict[Any, RunRequest], events: LaunchEvents) -> None:
        """Cancel the tasks still going: each one's run gets Ctrl-C (the task is interrupted and stops its run first)."""
        for reference in pending:
            ray.cancel(reference, force=False)
        deadline = time.monotonic() + CANCEL_GRACE_S
        remaining = dict(pending)
        while remaining and time.monotonic() < deadline:
            done, _ = ray.wait(list(remaining), num_returns=len(remaining), timeout=1.0)
            for reference in done:
                request = remaining.pop(reference)
                try:
                    events.finished(request, int(ray.get(reference)))
                except Exception:
                    events.finished(request, 130)
        for reference, request in remaining.items():
            ray.cancel(reference, force=True)
            events.finished(request, None, "cancelled when the sweep stopped")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
