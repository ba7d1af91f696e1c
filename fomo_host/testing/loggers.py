"""Conformance tests for loggers (the ``logger`` kind): subclass :class:`LoggerConformance` in your tests.

::

    from fomo_host.testing import LoggerConformance

    class TestMyLogger(LoggerConformance):
        logger_name = "my-logger"
        params = {"folder": "my-logs"}          # the params of the simulated runs (default: none)
        invalid_params = {"folder": "/abs"}     # params the logger must refuse (None: only the unknown-key check)

A subclass gets, driving the installed plugins' hooks as a run does (every keyword
argument, in the engine's order): the logger is registered with a provider, its Params
derive from :class:`fomo_host.params.LoggerParams`, refuse unknown and invalid keys, and
``problems()`` answers with lines; a run that lists it writes under the run directory,
and one that does not list it writes nothing; a second process of the run writes
nothing; a resumed run (``resumed_from_task``) continues without removing files. A
logger whose ``problems()`` are not empty here (a missing tracker package, no login)
has its runs skipped with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from ..params import LoggerParams
from ..plugins import installed_plugins
from ..process import ProcessInfo
from ..registry import Component
from ..spec import RunSpec
from .helpers import make_spec

STEPS = 4


def evaluation_record(task: int) -> dict[str, Any]:
    score = 0.2 + 0.1 * task
    return {
        "task": task,
        "step": STEPS * (task + 1),
        "samples_seen": 16 * STEPS * (task + 1),
        "subset_fraction": 1.0,
        "scores": {"toy-a": score, "toy-z": 0.5},
        "metrics": {"toy-a": {"top1": score, "top5": 0.9}, "toy-z": {"top1": 0.5, "top5": 0.8}},
        "A_KA": score,
        "A_ZS": 0.5,
        "GM": (score * 0.5) ** 0.5,
        "compute": {"gflops": 3.0 * (task + 1), "maf": 2.0 * (task + 1)},
        "groups": {"adaptation": ["toy-a"], "zero_shot": ["toy-z"]},
        **({"train_loss": 1.5 - 0.1 * task} if task >= 0 else {}),
    }


class LoggerConformance:
    """The conformance suite of loggers; set ``logger_name`` (and ``params``) in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    logger_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    """The logger's params in the simulated runs."""
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the logger must refuse (None: only the unknown-key check)."""
    spec_table: ClassVar[dict[str, Any]] = {
        "model": {"name": "tiny-clip"},
        "data": {"sources": [{"name": "synthetic"}], "ordering": {"name": "random"}},
        "budget": {"steps_per_task": STEPS},
        "method": {"name": "finetune"},
        "optimizer": {"name": "adamw"},
        "scheduler": {"name": "constant"},
        "merger": {"name": "none"},
        "evaluation": {"metrics": [{"name": "zero-shot-accuracy"}]},
    }
    """The spec of the simulated run (``run.loggers`` is set by the suite); it names every component, none of which need be
    installed: only the logger is built."""

    def component(self) -> Component:
        return installed_plugins().registry.get("logger", self.logger_name)

    def spec(self, listed: bool) -> RunSpec:
        table = {**self.spec_table, "run": {**self.spec_table.get("run", {})}}
        table["run"]["loggers"] = [{"name": self.logger_name, "params": dict(self.params)}] if listed else []
        return make_spec(table, components=False)

    def usable_here(self) -> None:
        params = self.component().validate_params(dict(self.params))
        assert isinstance(params, LoggerParams)
        problems = params.problems()
        if problems:
            pytest.skip(f"logger {self.logger_name!r} cannot work here: {problems[0]}")

    def simulate(self, run_dir: Path, listed: bool, tasks: range, resumed_from_task: int | None = None, rank: int = 0) -> None:
        """The lifecycle hooks in the order the engine calls them, with every argument."""
        hook, process = installed_plugins().hook, ProcessInfo(rank=rank, world_size=2 if rank else 1)
        spec, num_tasks = self.spec(listed), max(tasks, default=0) + 1
        common = {"run_dir": run_dir, "loggers": spec.run.logger_names(), "process": process}
        hook.on_run_start(spec=spec, num_tasks=num_tasks, steps_per_task=STEPS, resumed_from_task=resumed_from_task, **common)
        if resumed_from_task is None:
            hook.on_evaluation(record=evaluation_record(-1), **common)
        for task in tasks:
            hook.on_task_start(task=task, num_tasks=num_tasks, steps=STEPS, concepts=[f"toy-a::class {task}"], **common)
            if process.is_main:
                for step in (2, STEPS):
                    hook.on_train_step(
                        task=task, num_tasks=num_tasks, step=step, steps=STEPS, global_step=task * STEPS + step, loss=2.0, lr=1e-3, **common
                    )
            hook.on_task_end(task=task, num_tasks=num_tasks, steps=STEPS, mean_loss=1.5, **common)
            hook.on_evaluation(record=evaluation_record(task), **common)
        summary = {"tasks_done": num_tasks, **{key: {"final": 0.4, "mean": 0.35} for key in ("A_KA", "A_ZS", "GM")}}
        hook.on_run_end(summary=summary if process.is_main else {}, **common)

    def test_it_is_registered_with_its_provider_and_logger_params(self) -> None:
        component = self.component()
        assert component.kind == "logger" and component.provider.distribution
        assert issubclass(component.params, LoggerParams), "a logger's Params derive from fomo_host.api.LoggerParams"
        assert self.spec(listed=True).run.logger_names() == [self.logger_name]

    def test_its_params_validate_and_refuse_unknown_and_invalid_keys(self) -> None:
        component = self.component()
        assert isinstance(component.validate_params(dict(self.params)), LoggerParams)
        with pytest.raises(ValidationError):
            component.validate_params({**self.params, "no-such-setting": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                component.validate_params(dict(self.invalid_params))

    def test_problems_are_lines(self) -> None:
        params = self.component().validate_params(dict(self.params))
        assert isinstance(params, LoggerParams)
        problems = params.problems()
        assert isinstance(problems, list) and all(isinstance(line, str) and line and "\n" not in line for line in problems)

    def test_a_run_listing_it_writes_and_one_not_listing_it_writes_nothing(self, tmp_path: Path) -> None:
        self.usable_here()
        listed, unlisted = tmp_path / "listed", tmp_path / "unlisted"
        listed.mkdir()
        unlisted.mkdir()
        self.simulate(listed, True, range(2))
        self.simulate(unlisted, False, range(2))
        assert any(path.is_file() for path in listed.rglob("*")), "a run listing the logger wrote nothing under its directory"
        assert list(unlisted.iterdir()) == [], "a run not listing the logger got files"

    def test_a_second_process_writes_nothing(self, tmp_path: Path) -> None:
        self.usable_here()
        self.simulate(tmp_path, True, range(2), rank=1)
        assert list(tmp_path.iterdir()) == [], "a process other than the main one wrote logs"

    def test_a_resumed_run_continues(self, tmp_path: Path) -> None:
        self.usable_here()
        self.simulate(tmp_path, True, range(1))
        before = {path for path in tmp_path.rglob("*") if path.is_file()}
        self.simulate(tmp_path, True, range(1, 3), resumed_from_task=1)
        after = {path for path in tmp_path.rglob("*") if path.is_file()}
        assert before <= after, "resuming removed log files"
