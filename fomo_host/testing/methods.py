"""Conformance tests for update methods: subclass :class:`MethodConformance` in your plugin's tests.

::

    from fomo_host.testing import MethodConformance

    class TestMyMethod(MethodConformance):
        method_name = "my-method"
        params = {"rank": 4}
        invalid_params = {"rank": 0}

        def claims_to_train(self, name: str) -> bool:
            return name.endswith(".bias")

A subclass gets: the params validate, and an unknown key and ``invalid_params``
are rejected; a two-task run of a toy CLIP on synthetic data finishes;
the first task changes only the weights it claims to train (full weights as
the method exports them, compared with the base model) and changes some;
a run interrupted inside its second task (after the checkpoint one step
before that task's end: the method's state must hold what later steps depend
on) and resumed ends with exactly the results and weights of the
uninterrupted run; and (marked ``slow`` and ``multiprocess``) the run works
under ``accelerate launch`` with two CPU processes, both of which run every task.

The runs need nothing but the host and the plugin under test: the model, data,
ordering, scheduler, metric and merger around the method are the host's toy
components (:mod:`fomo_host.testing.toy_plugin`, registered for the suite only).
The model has open_clip's layout (``visual.transformer.resblocks.N.attn``,
``mlp.c_fc``, ``ln_1``, ... see :mod:`fomo_host.testing.transformer_clip`), so
``claims_to_train`` names weights as for an open_clip model.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from pydantic import ValidationError

from .. import hookimpl
from ..components import Logger
from ..engine.checkpoint import Checkpoint
from ..plugins import PluginHost, load_plugins
from ..progress import Reporter
from ..results import read_records
from ..spec import RunSpec
from ..spec_loading import build_spec
from ..weights import load_weights
from .toy_plugin import (
    DATA,
    METRIC,
    MODEL,
    OPTIMIZER,
    ORDERING,
    RECORDER,
    SCHEDULER,
    TOY_PLUGINS,
    finetuned_key,
    processes_seen,
    toy_environment,
)

BASE_WEIGHTS = Path("weights") / "base.safetensors"
TOY_DATA: dict[str, Any] = {"classes": 3, "train_per_class": 8, "test_per_class": 4, "adaptation_sets": 2}
"""The ``conformance-data`` params of the runs: 3 classes in each of 2 adaptation sets (6 concepts), a pool, a held-out set."""


INTERRUPTER = "conformance-interrupt"


class InterruptAtLastStep:
    """A logger that stops a run at the last step of a task, the way Ctrl-C does: after the task's last checkpoint
    inside it (``run.checkpoint_every_steps``), before the task ends."""

    def __init__(self, task: int) -> None:
        self.task = task

    @hookimpl
    def register_loggers(self, register: Any) -> None:
        register(
            name=INTERRUPTER,
            factory=lambda params, context: Interrupter(self.task, context.steps_per_task),
            description="stops a run at a task's last step",
        )


class Interrupter(Logger):
    """Raises KeyboardInterrupt when ``task`` reaches its last step (``steps``)."""

    def __init__(self, task: int, steps: int) -> None:
        self.task, self.steps = task, steps

    def train_step(self, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
        if (task, step) == (self.task, self.steps):
            raise KeyboardInterrupt

    def evaluation(self, record: dict[str, Any]) -> None:
        """It logs nothing."""


def comparable_records(run_dir: Path) -> list[dict[str, Any]]:
    """Everything a run computed, without wall-clock timings."""
    return [{k: v for k, v in record.items() if k != "eval_seconds"} for record in read_records(run_dir)]


class MethodConformance:
    """The conformance suite of the ``method`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    method_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    """The method's params for the runs."""
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the method must reject (None: only the unknown-key check)."""
    optimizer: ClassVar[dict[str, Any]] = {"lr": 1e-3}
    model_params: ClassVar[dict[str, Any]] = {}
    """Params of the ``conformance-clip`` model (widths, layers: :class:`fomo_host.testing.toy_plugin.ClipParams`)."""
    num_tasks: ClassVar[int] = 2
    steps_per_task: ClassVar[int] = 3
    batch_size: ClassVar[int] = 16

    def claims_to_train(self, name: str) -> bool:
        """Whether a task may change the full weight ``name`` (a base model parameter name); default: every weight."""
        return True

    # ------------------------------------------------------------------ running

    def spec_table(self) -> dict[str, Any]:
        return {
            "run": {
                "name": f"conformance-{self.method_name}",
                "seed": 0,
                "batch_size": self.batch_size,
                "cpu": True,
                # a checkpoint one step before each task's end: the resume test continues inside a task
                "checkpoint_every_steps": max(1, self.steps_per_task - 1),
            },
            "model": {"name": MODEL, "params": dict(self.model_params)},
            "data": {
                "sources": [{"name": DATA, "params": dict(TOY_DATA)}],
                "ordering": {"name": ORDERING},
                "num_tasks": self.num_tasks,
            },
            "budget": {"steps_per_task": self.steps_per_task},
            "method": {"name": self.method_name, "params": dict(self.params)},
            "optimizer": {"name": OPTIMIZER, **self.optimizer},
            "scheduler": {"name": SCHEDULER},
            "merger": {"name": RECORDER},
            "evaluation": {"batch_size": 64, "metrics": [{"name": METRIC}]},
        }

    def extra_plugins(self) -> list[tuple[str, object]]:
        """(name, plugin) pairs the runs load besides the installed plugins: a component a test defines itself."""
        return []

    def load_host(self, interrupt_at: int | None = None) -> PluginHost:
        extra: list[tuple[str, object]] = [*TOY_PLUGINS, *self.extra_plugins()]
        if interrupt_at is not None:
            extra.append(("fomo-conformance-interrupt", InterruptAtLastStep(interrupt_at)))
        return load_plugins(extra=extra)

    def build(self, host: PluginHost, interrupted: bool = False) -> RunSpec:
        table = self.spec_table()
        if interrupted:  # loggers change no result: the run resumes without them
            table["run"] = {**table["run"], "loggers": [INTERRUPTER], "log_every_steps": 1}
        return build_spec(table, registry=host.registry, source=f"conformance spec of {self.method_name!r}")

    def run_stream(self, run_dir: Path, cache_dir: Path, interrupt_at: int | None = None, resume: bool = False) -> dict[str, Any]:
        """A run of the stream; ``interrupt_at``: stopped at that task's last step, as Ctrl-C stops it."""
        from ..engine.run import ContinualRun, prepare

        host = self.load_host(interrupt_at)
        spec = self.build(host, interrupted=interrupt_at is not None)
        reporter = Reporter(enabled=False)
        setup = prepare(host, spec, reporter, cache_dir=cache_dir)
        return ContinualRun(host, setup, run_dir, reporter).execute(resume=resume)

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture(scope="class")
    @classmethod
    def cache_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        configured = os.environ.get("FOMO_CACHE_DIR")
        path = Path(configured) if configured else tmp_path_factory.getbasetemp() / "fomo-conformance-cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @pytest.fixture(scope="class")
    @classmethod
    def uninterrupted(cls, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
        """One uninterrupted run per class, shared by the tests that read it."""
        run_dir = tmp_path_factory.mktemp(f"{cls.method_name}-uninterrupted") / "run"
        cls().run_stream(run_dir, cache_dir)
        return run_dir

    # ------------------------------------------------------------------ tests

    def test_params_validate_and_reject_bad_values(self) -> None:
        host = self.load_host()
        component = host.registry.get("method", self.method_name)
        component.validate_params(self.params)
        with pytest.raises(ValidationError):
            component.validate_params({**self.params, "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                component.validate_params({**self.params, **self.invalid_params})

    def test_run_finishes(self, uninterrupted: Path) -> None:
        records = read_records(uninterrupted)
        assert [record["task"] for record in records] == [-1, *range(self.num_tasks)]
        for record in records:
            assert all(math.isfinite(record[key]) for key in ("A_KA", "A_ZS", "GM"))
        assert all(math.isfinite(record["train_loss"]) for record in records[1:])
        summary = json.loads((uninterrupted / "summary.json").read_text(encoding="utf-8"))
        assert summary["method"] == self.method_name

    def test_changes_only_what_it_claims_to_train(self, uninterrupted: Path) -> None:
        base = load_weights(uninterrupted / BASE_WEIGHTS)
        after_first_task = load_weights(uninterrupted / "weights" / f"{finetuned_key(0)}.safetensors")
        assert set(after_first_task) == set(base), "exported weights must use exactly the base model's names"
        changed = {name for name in base if not torch.equal(base[name], after_first_task[name])}
        unclaimed = sorted(name for name in changed if not self.claims_to_train(name))
        assert not unclaimed, f"{self.method_name} changed weights it does not claim to train: {unclaimed[:10]}"
        assert changed, f"{self.method_name} changed no weight in a task"

    def test_resume_matches_uninterrupted_run(self, uninterrupted: Path, tmp_path: Path, cache_dir: Path) -> None:
        run_dir = tmp_path / "run"
        with pytest.raises(KeyboardInterrupt):
            self.run_stream(run_dir, cache_dir, interrupt_at=1)
        assert [record["task"] for record in read_records(run_dir)] == [-1, 0]
        # the checkpoint inside the second task: the method's state and the optimizer's as they stood at that step
        checkpoint = Checkpoint.load(run_dir)
        assert checkpoint is not None and checkpoint.step_in_task == (self.steps_per_task - 1 if self.steps_per_task > 1 else 0)
        self.run_stream(run_dir, cache_dir, resume=True)
        resumed_records, expected_records = comparable_records(run_dir), comparable_records(uninterrupted)
        assert len(resumed_records) == len(expected_records)
        for resumed_record, expected_record in zip(resumed_records, expected_records, strict=True):
            assert resumed_record == expected_record, (
                f"task {expected_record['task']}: the resumed run recorded {_difference(resumed_record, expected_record)}"
            )
        last = f"{finetuned_key(self.num_tasks - 1)}.safetensors"
        resumed, expected = load_weights(run_dir / "weights" / last), load_weights(uninterrupted / "weights" / last)
        different = sorted(name for name in expected if not torch.equal(resumed[name], expected[name]))
        assert not different, f"the resumed run's final weights differ from the uninterrupted run's: {different[:10]}"

    @pytest.mark.slow
    @pytest.mark.multiprocess
    def test_two_processes_under_accelerate(self, tmp_path: Path, cache_dir: Path) -> None:
        processes_dir = tmp_path / "processes"
        table = self.spec_table()
        table["merger"] = {"name": RECORDER, "params": {"processes_dir": str(processes_dir)}}
        spec_path = tmp_path / "spec.toml"
        spec_path.write_text(build_spec(table).to_toml(), encoding="utf-8")
        run_dir = tmp_path / "run"
        # --multi_gpu starts one process per --num_processes (torchrun); with no GPU visible they run on the CPU
        # (--cpu would start a single process whatever --num_processes says)
        command = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
            "-m", "fomo_host.cli", "run", str(spec_path), "--output", str(run_dir), "--quiet",
        ]  # fmt: skip
        environment = {
            **os.environ,
            **toy_environment(),
            "FOMO_CACHE_DIR": str(cache_dir),
            "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",
        }
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
        assert result.returncode == 0, result.stderr[-4000:]
        records = read_records(run_dir)
        assert [record["task"] for record in records] == [-1, *range(self.num_tasks)]
        assert all(math.isfinite(record["GM"]) for record in records)
        both = {(0, 2), (1, 2)}
        assert processes_seen(processes_dir) == dict.fromkeys(range(self.num_tasks), both), (
            f"every task must run on two processes (rank, world size): {processes_seen(processes_dir)}"
        )


def _difference(found: dict[str, Any], expected: dict[str, Any]) -> str:
    keys = sorted(key for key in set(found) | set(expected) if found.get(key) != expected.get(key))
    return "; ".join(f"{key} = {found.get(key)!r}, uninterrupted {expected.get(key)!r}" for key in keys)[:2000]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
