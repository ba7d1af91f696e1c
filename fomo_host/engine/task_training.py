"""One task of the stream trained: its data, the method's setup, its steps within the budget, the end-of-task work.

:func:`task_pools` is the task's data (the pools its mixed batches draw from);
:class:`TaskTraining` trains the live model on them for the task's steps, writing checkpoints
inside the task where the spec asks (``run.checkpoint_every_steps``) and continuing from one.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..components import OptimizerBuilder, TaskInfo, UpdateMethod
from ..data import Concept
from ..faults import fault_point
from ..model_inputs import TokenCache
from ..progress import Reporter
from .checkpoint import Checkpoint
from .loader import DeviceTransfer, TaskBatches
from .mixture import MixedBatches, Pool, Pools, Segment
from .run_checkpoints import RunCheckpoints, StreamPosition
from .run_events import RunEvents
from .runtime import derive_seed
from .setup import Setup, loader_settings
from .sharding import Sharding
from .training import LoopState, StepLoop, TaskDataAccess, TaskOptimizers, TrainingStep, compile_failures, finish_task, start_task


def task_pools(setup: Setup, task: int) -> Pools:
    """The task's batch sources: the pretraining pool, this task's concepts, and the buffer of all earlier tasks'."""
    data = setup.data
    by_name = data.by_name

    def pool_of(concepts: list[Concept]) -> Pool:
        segments = []
        for name in dict.fromkeys(c.dataset for c in concepts):
            dataset = by_name[name]
            assert dataset.train is not None
            segments.append(Segment(dataset.train, dataset.train_indices(concepts)))
        return Pool(segments)

    earlier = [c for t in range(task) for c in setup.tasks[t]]
    return Pools(
        pretraining=Pool([Segment(d.train, torch.arange(len(d.train))) for d in data.pretraining if d.train is not None]),
        update=pool_of(setup.tasks[task]),
        buffer=pool_of(earlier),
    )


class TaskTraining:
    """Trains the live model through one task at a time."""

    def __init__(
        self,
        setup: Setup,
        method: UpdateMethod,
        optimizer_builder: OptimizerBuilder,
        scheduler: Any,
        sharding: Sharding,
        checkpoints: RunCheckpoints,
        events: RunEvents,
        reporter: Reporter,
    ) -> None:
        self.spec, self.runtime, self.bundle = setup.spec, setup.runtime, setup.bundle
        self.method, self.optimizer_builder, self.scheduler, self.sharding = method, optimizer_builder, scheduler, sharding
        self.checkpoints, self.events, self.reporter = checkpoints, events, reporter
        self.num_tasks = len(setup.tasks)
        self.tokens = TokenCache(self.bundle)
        self.loader = loader_settings(self.spec)

    def train(
        self,
        live_model: torch.nn.Module,
        info: TaskInfo,
        pools: Pools,
        optimizer_state: dict[str, Any] | None,
        before: StreamPosition,
        inside: Checkpoint | None = None,
    ) -> tuple[float, Any]:
        """Method setup, the task's steps on mixed batches, the method's end-of-task work; returns (mean loss, optimizer
        state to keep). ``before``: the stream's position at the task's start; ``inside``: a checkpoint written
        inside this task, to continue from."""
        with compile_failures(self.spec.method.name) if self.spec.run.compile else contextlib.nullcontext():
            return self._train(live_model, info, pools, optimizer_state, before, inside)

    def _train(
        self,
        live_model: torch.nn.Module,
        info: TaskInfo,
        pools: Pools,
        optimizer_state: dict[str, Any] | None,
        before: StreamPosition,
        inside: Checkpoint | None,
    ) -> tuple[float, Any]:
        spec, runtime = self.spec, self.runtime
        optimizers = TaskOptimizers(spec.optimizer, self.optimizer_builder, runtime.device)
        optimizer = start_task(live_model, self.method, info, optimizers)
        forward_model = self.sharding.forward_model(live_model)
        step = TrainingStep(live_model, optimizer, spec.optimizer, runtime.mixed_precision, self.method, forward_model=forward_model)
        state = LoopState()
        if inside is not None:
            state = self.checkpoints.restore_inside_task(live_model, optimizer, step.scaler, inside)
        elif optimizer_state is not None and not spec.optimizer.reset_per_task:
            self.sharding.load_optimizer_state(live_model, optimizer, optimizer_state)
        # a checkpoint inside the task was taken in training mode: switching again changes nothing
        optimizers.train_mode(optimizer)
        generator = torch.Generator().manual_seed(derive_seed(spec.run.seed, "data", info.index))
        batches = MixedBatches(pools, spec.run.batch_size, spec.data.mixture, generator)
        label = f"task {info.index + 1}/{self.num_tasks}"
        loop = StepLoop(step, lambda index: self.scheduler(index, info.steps, info.index, self.num_tasks), runtime.device, label)
        step_log = self.events.step_log(info)
        transfer = DeviceTransfer(runtime, self.bundle, self.tokens)

        def checkpoint_inside(reached: LoopState) -> None:
            scaler = step.scaler.state_dict() if step.scaler is not None else None
            position = before.after(reached.steps_done, spec.run.batch_size)
            optimizer_now = self.sharding.optimizer_state(live_model, optimizer)
            self.checkpoints.save(live_model, info.index, position, optimizer_now, inside=reached, grad_scaler=scaler)

        with self.reporter.bar(f"{label}: training", info.steps, run_steps=True) as bar:
            if state.steps_done:
                bar.advance(state.steps_done)

            def on_step(index: int, loss: torch.Tensor) -> None:
                bar.advance(1)
                fault_point("training.step")
                if step_log is not None:
                    step_log(index, loss)

            def on_check(done: int, loss: float) -> None:
                if self.reporter.interactive:
                    bar.advance(0, f"loss {loss:.3f}")

            with TaskBatches(batches, transfer, info.steps, start_step=state.steps_done, settings=self.loader) as device_batches:
                mean_loss = loop.run(
                    device_batches,
                    info.steps,
                    on_step,
                    state=state,
                    on_check=on_check,
                    checkpoint_every=spec.run.checkpoint_every_steps,
                    on_checkpoint=checkpoint_inside,
                )
        # from here on the weights are read (end-of-task work, export, merge, evaluation, checkpoint): their evaluation form
        optimizers.eval_mode(optimizer)
        end_task_seed = derive_seed(spec.run.seed, "end-task", info.index)
        task_data = TaskDataAccess.from_pool(
            runtime, self.bundle, self.tokens, pools.update, spec.run.batch_size, end_task_seed, self.loader
        )
        finish_task(live_model, self.method, info, task_data)
        kept = None if spec.optimizer.reset_per_task else self.sharding.optimizer_state(live_model, optimizer)
        return mean_loss, kept
