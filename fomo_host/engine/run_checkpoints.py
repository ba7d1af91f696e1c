"""A run's state on disk and back: where an interrupted run continues, its checkpoints and its base weights.

:class:`RunCheckpoints` is the one way the loop writes or reads that state: a fresh run
directory (spec and theta_0), a checkpoint after each task or inside one, the resume point
(checked against the spec and budget the run is resumed with) and the restore of the live
model, method and merger from it. The checkpoint's file format is :mod:`.checkpoint`; the
model's weights and optimizer state cross through the run's :class:`~.sharding.Sharding`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..components import Merger, StateDict, UpdateMethod
from ..deployed import DeployedWeights
from ..errors import FomoError, TrainingDiverged
from ..faults import fault_point
from ..results import restore_records, write_text_atomic
from ..run_directory import SPEC_FILE
from ..update_history import continues_update
from ..weights import load_weights, save_weights
from .checkpoint import BASE_WEIGHTS, Checkpoint
from .runtime import random_state, restore_random_state
from .setup import Setup
from .sharding import Sharding
from .training import LoopState


@dataclass(frozen=True)
class StreamPosition:
    """How far the stream has trained: optimizer steps and samples, over all tasks."""

    global_step: int = 0
    samples_seen: int = 0

    def after(self, steps: int, batch_size: int) -> StreamPosition:
        return StreamPosition(self.global_step + steps, self.samples_seen + steps * batch_size)


@dataclass
class ResumePoint:
    """Where the stream continues: the next task, the counters of the tasks finished, and the states a checkpoint restores."""

    next_task: int
    global_step: int
    """Optimizer steps of the tasks before ``next_task``."""
    samples_seen: int
    checkpoint: Checkpoint | None
    """None for a run that starts from the beginning."""

    @classmethod
    def beginning(cls) -> ResumePoint:
        return cls(0, 0, 0, None)

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(self.global_step, self.samples_seen)

    @property
    def optimizer_state(self) -> dict[str, Any] | None:
        return self.checkpoint.optimizer if self.checkpoint is not None else None

    @property
    def inside_task(self) -> Checkpoint | None:
        """The checkpoint, where it was written inside task ``next_task`` (``run.checkpoint_every_steps``)."""
        return self.checkpoint if self.checkpoint is not None and self.checkpoint.step_in_task > 0 else None

    def inside(self, task: int) -> Checkpoint | None:
        """The checkpoint written inside ``task`` to continue it from, if there is one."""
        return self.inside_task if task == self.next_task else None


def resume_point(run_dir: Path, setup: Setup, warn: Callable[[str], None] | None = None) -> ResumePoint:
    """The last intact checkpoint of an interrupted run, checked against the spec and budget it is resumed with.

    A run stopped before its first checkpoint (during the base evaluation) has none: it starts from the beginning.
    """
    checkpoint = Checkpoint.load(run_dir, warn=warn)
    if checkpoint is None:
        return ResumePoint.beginning()
    fingerprint = setup.spec.fingerprint()
    if checkpoint.spec_fingerprint != fingerprint and not continues_update(run_dir, checkpoint.spec_fingerprint, fingerprint):
        raise FomoError(
            f"{run_dir}: the spec differs from the one this run started with ({run_dir / SPEC_FILE}); "
            f"resume with that spec: fomo-host run --resume {run_dir}"
        )
    check_resumed_budget(run_dir, checkpoint, setup)
    # a checkpoint inside a task counts that task's steps done; the point counts finished tasks
    done = checkpoint.step_in_task
    samples_before = checkpoint.samples_seen - done * setup.spec.run.batch_size
    return ResumePoint(checkpoint.next_task, checkpoint.global_step - done, samples_before, checkpoint)


def recorded_steps_per_task(records: list[dict[str, Any]]) -> int | None:
    """The steps per task a run's records say it trained (the first record that names its budget)."""
    return next((record["budget"]["steps_per_task"] for record in records if "budget" in record), None)


def check_resumed_budget(run_dir: Path, checkpoint: Checkpoint, setup: Setup) -> None:
    """A resumed run must train as many steps per task as its first start did (the budget cache may have moved)."""
    recorded = recorded_steps_per_task(checkpoint.records[:1])
    if recorded is not None and recorded != setup.steps_per_task:
        raise FomoError(
            f"{run_dir}: this run trained {recorded} steps per task, the budget now gives {setup.steps_per_task} "
            "(a re-measured memory multiplier?); resume where the budget cache of the first start is"
        )


class RunCheckpoints:
    """Writes and reads back everything a run needs to continue exactly.

    ``records``: the run's evaluations so far (the list :class:`~.run_evaluation.RunEvaluation` keeps), which every
    checkpoint carries so that a resume can check and rebuild ``results.jsonl``.
    """

    def __init__(
        self,
        setup: Setup,
        run_dir: Path,
        sharding: Sharding,
        method: UpdateMethod,
        merger: Merger,
        records: list[dict[str, Any]],
        warn: Callable[[str], None],
    ) -> None:
        self.setup, self.spec, self.runtime, self.run_dir = setup, setup.spec, setup.runtime, run_dir
        self.sharding, self.method, self.merger, self.records, self.warn = sharding, method, merger, records, warn
        self.num_tasks = len(setup.tasks)

    def resume_point(self) -> ResumePoint:
        return resume_point(self.run_dir, self.setup, self.warn)

    def start_directory(self, deployed: DeployedWeights) -> StateDict:
        """A fresh run (or one restarted before its first checkpoint): the resolved spec and the base weights (theta_0)
        are written first, and any evaluations of an earlier start dropped; returns theta_0."""
        base = {name: tensor.detach().clone() for name, tensor in self.setup.bundle.model.state_dict().items()}
        if self.runtime.is_main:
            write_text_atomic(self.run_dir / SPEC_FILE, self.spec.to_toml())
            fault_point("run.started")
            save_weights(base, self.run_dir / BASE_WEIGHTS, deployed.metadata(0))
            restore_records(self.run_dir, [])
        self.runtime.barrier()
        return base

    def base_weights(self) -> StateDict:
        """theta_0, as the run's first start wrote it."""
        return load_weights(self.run_dir / BASE_WEIGHTS, self.runtime.device)

    def restore(self, live_model: torch.nn.Module, checkpoint: Checkpoint) -> None:
        """The live model's, the method's and the merger's states as the checkpoint holds them."""
        self.sharding.load_model_state(live_model, checkpoint.model)
        self.method.load_state_dict(checkpoint.method)
        self.merger.load_state_dict(checkpoint.merger)

    def restore_inside_task(
        self, live_model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any, inside: Checkpoint
    ) -> LoopState:
        """Continue a task from a checkpoint written inside it: the task's setup ran again, and what it set up (method,
        optimizer, gradient scaler) and the random generators are restored as they stood; returns where the task's
        loop stands."""
        self.method.load_state_dict(inside.method)
        assert inside.optimizer is not None, "a checkpoint inside a task keeps the optimizer's state"
        self.sharding.load_optimizer_state(live_model, optimizer, inside.optimizer)
        if scaler is not None and inside.grad_scaler is not None:
            scaler.load_state_dict(inside.grad_scaler)
        restore_random_state(inside.random_state)
        return LoopState(inside.step_in_task, inside.task_loss_sum)

    def save(
        self,
        live_model: torch.nn.Module,
        next_task: int,
        position: StreamPosition,
        optimizer_state: Any,
        inside: LoopState | None = None,
        grad_scaler: dict[str, Any] | None = None,
    ) -> None:
        """Everything needed to continue exactly (the main process writes it, checksummed; see checkpoint.py); never a
        model gone non-finite.

        ``inside``: where the loop stands in task ``next_task`` (a checkpoint inside a task), with the random
        generators' states and the optimizer's and gradient scaler's of that task.
        """
        if not self.sharding.all_finite(live_model):
            shown = next_task + 1 if inside is not None else next_task  # the task trained last, counted from 1
            where = f"task {shown}/{self.num_tasks}" if shown else "the base model"
            raise TrainingDiverged(
                f"{where}: the model's weights are no longer finite; the run stopped, its last checkpoint is kept; "
                "lower optimizer.lr or check the data"
            )
        model_state = self.sharding.model_state(live_model)  # gathered by every process when the model is sharded
        # every process has written its merger's files before the manifest lists them
        self.runtime.barrier()
        if self.runtime.is_main:
            Checkpoint(
                next_task=next_task,
                records=list(self.records),
                global_step=position.global_step,
                samples_seen=position.samples_seen,
                spec_fingerprint=self.spec.fingerprint(),
                model=model_state,
                method=self.method.state_dict(),
                merger=self.merger.state_dict(),
                optimizer=optimizer_state,
                step_in_task=inside.steps_done if inside is not None else 0,
                task_loss_sum=inside.loss_sum if inside is not None else 0.0,
                random_state=random_state() if inside is not None else None,
                grad_scaler=grad_scaler,
            ).save(self.run_dir)
        self.runtime.barrier()
