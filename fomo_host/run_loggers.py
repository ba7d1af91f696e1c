"""The loggers of the runs in progress: built from the spec when a run starts, driven through the lifecycle hooks.

The host registers one :class:`RunLoggers` with the plugin manager, next to the plugins. When a
run starts it builds the loggers the spec turns on (``run.loggers``, components of the ``logger``
kind) on the main process, and passes every later lifecycle call on to them, so a logger plugin
keeps no state of its own between calls and never looks at the names of other plugins' loggers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl
from .process import ProcessInfo

if TYPE_CHECKING:
    from .components import Logger
    from .registry import Registry
    from .spec import RunSpec

PLUGIN_NAME = "fomo-host:loggers"
"""The name :class:`RunLoggers` is registered under (not a distribution: ``fomo-host plugins`` does not list it)."""


class RunLoggers:
    """Builds and drives the loggers of each run in progress in this process, by run directory."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.open: dict[Path, list[Logger]] = {}

    def of(self, run_dir: Path | None) -> list[Logger]:
        return self.open.get(Path(run_dir), []) if run_dir is not None else []

    @hookimpl
    def on_run_start(
        self, run_dir: Path, spec: RunSpec, num_tasks: int, steps_per_task: int, resumed_from_task: int | None, process: ProcessInfo
    ) -> None:
        if not process.is_main or not spec.run.loggers:  # one process writes the logs of a multi-process run
            return
        from .components import LoggerContext
        from .resolve import resolve_loggers

        self.close(run_dir)  # the same run started again in this process (after an interruption)
        context = LoggerContext(Path(run_dir), spec, num_tasks, steps_per_task, resumed_from_task)
        built: list[Logger] = []
        try:
            for resolved in resolve_loggers(spec, self.registry):
                built.append(resolved.build(context))
        except BaseException:
            for logger in built:
                logger.close()
            raise
        self.open[Path(run_dir)] = built

    @hookimpl
    def on_task_start(self, run_dir: Path, task: int, concepts: list[str]) -> None:
        for logger in self.of(run_dir):
            logger.task_start(task, concepts)

    @hookimpl
    def on_train_step(self, run_dir: Path, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
        for logger in self.of(run_dir):
            logger.train_step(task, step, global_step, loss, lr)

    @hookimpl
    def on_task_end(self, run_dir: Path, task: int, steps: int, mean_loss: float) -> None:
        for logger in self.of(run_dir):
            logger.task_end(task, steps, mean_loss)

    @hookimpl
    def on_evaluation(self, run_dir: Path, record: dict[str, Any]) -> None:
        for logger in self.of(run_dir):
            logger.evaluation(record)

    @hookimpl
    def on_run_end(self, run_dir: Path, summary: dict[str, Any]) -> None:
        try:
            for logger in self.of(run_dir):
                logger.run_end(summary)
        finally:
            self.close(run_dir)

    def close(self, run_dir: Path | None) -> None:
        """Close the loggers of a run (each once, all of them even when one fails)."""
        loggers = self.open.pop(Path(run_dir), []) if run_dir is not None else []
        failure: BaseException | None = None
        for logger in loggers:
            try:
                logger.close()
            except Exception as exc:  # close the others before reporting it
                failure = failure or exc
        if failure is not None:
            raise failure
