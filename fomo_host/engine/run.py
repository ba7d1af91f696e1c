"""The continual loop of a whole run (DESIGN §3): :meth:`ContinualRun.execute`.

evaluate theta_0 (task -1)
for each task: the task's data -> train it (method setup, steps, end-of-task work)
               -> merger decides train-from and deploy weights
               -> evaluate deploy weights -> record -> checkpoint
-> summary

The loop reads and writes through one object per concern: :class:`~.run_checkpoints.RunCheckpoints`
(resume point, checkpoints, base weights), :class:`~.task_training.TaskTraining` (one task's
training), :class:`~.run_evaluation.RunEvaluation` (scores, records, summary), the run's
:class:`~.sharding.Sharding` (the live model whole or sharded: its weights in and out) and
:class:`~.run_events.RunEvents` (the lifecycle hooks). What is built before the first step
(components, model, data, stream, budget) is in :mod:`.setup`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from ..components import MergeInputs, StateDict, TaskInfo
from ..deployed import DeployedWeights
from ..faults import fault_point
from ..plugins import PluginHost
from ..progress import Reporter
from ..run_directory import SPEC_FILE
from ..weights import WeightStore
from .checkpoint import WEIGHTS_DIR
from .run_checkpoints import ResumePoint, RunCheckpoints, StreamPosition, resume_point
from .run_evaluation import RunEvaluation
from .run_events import RunEvents
from .runtime import derive_seed, seed_everything
from .setup import Setup, prepare
from .sharding import sharding_for
from .task_training import TaskTraining, task_pools
from .training import compile_for_training, enable_activation_checkpointing
from .trial import PRUNED_FILE, TrialPruned, TrialReporter
from .update import finish_pending_update

__all__ = ["SPEC_FILE", "ContinualRun", "ResumePoint", "prepare", "resume_point"]


class ContinualRun:
    """Runs (or resumes) a stream and writes its run directory."""

    def __init__(self, host: PluginHost, setup: Setup, run_dir: Path, reporter: Reporter) -> None:
        self.setup, self.spec, self.runtime, self.run_dir, self.reporter = setup, setup.spec, setup.runtime, run_dir, reporter
        components = setup.components
        self.method = components.method.build()
        optimizer_builder = components.optimizer.build()
        scheduler = components.scheduler.build()
        self.merger = components.merger.build()
        self.num_tasks = len(setup.tasks)
        self.events = RunEvents(host.hook, run_dir, self.spec, self.runtime, self.num_tasks, scheduler)
        self.evaluation = RunEvaluation(setup, run_dir, reporter, self.events, self.warn)
        self.sharding = sharding_for(self.spec, self.runtime, self.method)
        self.checkpoints = RunCheckpoints(setup, run_dir, self.sharding, self.method, self.merger, self.evaluation.records, self.warn)
        self.training = TaskTraining(
            setup, self.method, optimizer_builder, scheduler, self.sharding, self.checkpoints, self.events, reporter
        )
        self.deployed = DeployedWeights(run_dir, self.spec, setup.bundle, self.num_tasks)
        self.merge_history = WeightStore(run_dir / WEIGHTS_DIR)
        """Where the merger keeps the weights it merges from (task vectors, earlier models)."""
        self.trial = TrialReporter.from_environment()
        """Set when a search's sweep started this run: it reports after each task and may be pruned."""

    def execute(self, resume: bool) -> dict[str, Any]:
        point, base, live_model = self.start(resume)
        if point.checkpoint is None:
            self.evaluation.record(base, task=-1, position=StreamPosition(), full=True)
            self.checkpoints.save(live_model, 0, StreamPosition(), None)
        optimizer_state, position = point.optimizer_state, point.position
        for task in range(point.next_task, self.num_tasks):
            seed_everything(derive_seed(self.spec.run.seed, "task", task))
            info = TaskInfo(task, self.num_tasks, self.setup.steps_per_task, self.setup.tasks[task])
            self.events.task_start(info)
            pools = task_pools(self.setup, task)
            mean_loss, optimizer_state = self.training.train(live_model, info, pools, optimizer_state, position, point.inside(task))
            position = position.after(info.steps, self.spec.run.batch_size)
            deploy = self.merge(live_model, task, base)
            self.events.task_end(info, mean_loss)
            last = task == self.num_tasks - 1
            record = self.evaluation.record(deploy, task, position, full=last, mean_loss=mean_loss)
            if self.runtime.is_main:
                self.deployed.save(deploy, task + 1)
            self.reporter.line(
                f"task {task + 1}/{self.num_tasks}: loss {mean_loss:.3f}  "
                f"A_KA {record['A_KA']:.4f}  A_ZS {record['A_ZS']:.4f}  GM {record['GM']:.4f}"
            )
            del deploy
            self.checkpoints.save(live_model, task + 1, position, optimizer_state)
            if self.trial is not None and not last and self.trial_pruned(task):
                raise TrialPruned(f"the search pruned this trial after task {task + 1}/{self.num_tasks}; {self.run_dir} keeps its tasks")
        return self.finish()

    def start(self, resume: bool) -> tuple[ResumePoint, StateDict, torch.nn.Module]:
        """Where the run starts (its resume point), theta_0 and the live model, restored where the run resumes."""
        point = self.checkpoints.resume_point() if resume else ResumePoint.beginning()
        if resume and point.checkpoint is None:
            self.reporter.line(f"{self.run_dir} stopped before its first checkpoint; starting it from the beginning")
        base = self.checkpoints.base_weights() if point.checkpoint is not None else self.checkpoints.start_directory(self.deployed)
        live_model = self.prepare_model(point)
        self.reporter.track_run((self.num_tasks - point.next_task) * self.setup.steps_per_task)
        self.events.run_start(self.setup.steps_per_task, point.next_task if point.checkpoint is not None else None)
        return point, base, live_model

    def prepare_model(self, point: ResumePoint) -> torch.nn.Module:
        """The method wraps the base model (adapters), laid out by the sharding; a resumed run then restores model,
        method and merger states and its records."""
        # a method's prepare may draw random numbers (adapter initialisation): seed it, so that it does not
        # depend on what ran before (a warm start trained now or loaded from the cache)
        seed_everything(derive_seed(self.spec.run.seed, "method"))
        if self.spec.run.activation_checkpointing:
            enable_activation_checkpointing(self.setup.bundle.model, self.spec.model.name)
        live_model = self.method.prepare(self.setup.bundle.model)
        live_model.to(self.runtime.device)
        self.sharding.shard(live_model)
        if self.spec.run.compile:
            compile_for_training(live_model, self.method)
        checkpoint = point.checkpoint
        if checkpoint is not None:
            self.checkpoints.restore(live_model, checkpoint)
            self.evaluation.restore(checkpoint.records)
            at = f"step {checkpoint.step_in_task} of " if checkpoint.step_in_task else ""
            self.reporter.line(f"resuming {self.run_dir} at {at}task {point.next_task + 1}/{self.num_tasks}")
        return live_model

    def merge(self, live_model: torch.nn.Module, task: int, base: StateDict) -> StateDict:
        """The merger's decision after ``task``: the live model may continue from other weights; returns those deployed."""
        finetuned = self.sharding.export_weights(live_model)
        decision = self.merger.after_task(MergeInputs(task, self.num_tasks, base, finetuned, self.merge_history, self.runtime.process))
        fault_point("merge.done")
        if decision.train_from is not None:
            self.sharding.import_weights(live_model, decision.train_from)
        return decision.deploy if decision.deploy is not None else finetuned

    def finish(self) -> dict[str, Any]:
        """The summary; where this run is an update of a finished run, its release, and the update marked finished."""
        summary = self.evaluation.write_summary()
        if self.runtime.is_main:
            finish_pending_update(self.run_dir, self.spec, self.evaluation.records, self.reporter.line)
        self.events.run_end(summary)
        self.runtime.barrier()
        return summary

    def trial_pruned(self, task: int) -> bool:
        """Report the task to the search (main process) and whether its pruner stopped the trial (every process)."""
        assert self.trial is not None
        if self.runtime.is_main:
            self.trial.after_task(self.run_dir, task, self.evaluation.records, self.warn)
        self.runtime.barrier()
        return (self.run_dir / PRUNED_FILE).is_file()

    def warn(self, message: str) -> None:
        """Warnings and notes a user must see even with --quiet (a damaged file, a rebuilt one)."""
        if self.runtime.is_main:
            print(message, file=sys.stderr)
