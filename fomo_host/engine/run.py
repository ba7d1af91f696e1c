"""The continual loop of a whole run (DESIGN §3).

evaluate theta_0 (task -1)
for each task: mixed batches -> method setup -> train -> end-of-task work
               -> merger decides train-from and deploy weights
               -> evaluate deploy weights -> record -> checkpoint
-> summary

What is built before the first step (components, model, data, stream, budget)
is in :mod:`.setup`; where an interrupted run continues from is :func:`resume_point`.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsInt, cast

import torch

from ..components import MergeInputs, Metric, ModelBundle, OptimizerBuilder, TaskInfo, UpdateMethod
from ..data import Concept
from ..deployed import DeployedWeights
from ..errors import FomoError, TrainingDiverged
from ..faults import fault_point
from ..model_inputs import TokenCache
from ..plugins import PluginHost
from ..progress import Reporter
from ..results import aggregate, append_record, restore_records, summarise, write_summary, write_text_atomic
from ..run_directory import SPEC_FILE
from ..update_history import continues_update
from ..weights import WeightStore, load_weights, save_weights
from .checkpoint import BASE_WEIGHTS, WEIGHTS_DIR, Checkpoint
from .evaluation import EvaluationSet, build_metrics, evaluate, plan_evaluation, validation_plan
from .loader import DeviceTransfer, TaskBatches
from .mixture import MixedBatches, Pool, Pools, Segment
from .runtime import derive_seed, preserved_rng, random_state, restore_random_state, seed_everything
from .setup import Setup, loader_settings, prepare
from .sharding import Sharding
from .step_log import StepLog
from .training import (
    LoopState,
    StepLoop,
    TaskDataAccess,
    TaskOptimizers,
    TrainingStep,
    all_finite,
    compile_failures,
    compile_for_training,
    enable_activation_checkpointing,
    finish_task,
    start_task,
)
from .trial import PRUNED_FILE, TrialPruned, TrialReporter, split_records
from .update import evaluation_sets, finish_pending_update

__all__ = ["SPEC_FILE", "ContinualRun", "ResumePoint", "prepare", "resume_point"]


@dataclass
class ResumePoint:
    """Where the stream continues: the next task, the counters of the tasks finished, and the states a checkpoint restores."""

    next_task: int
    global_step: int
    """Optimizer steps of the tasks before ``next_task``."""
    samples_seen: int
    checkpoint: Checkpoint | None
    """None for a run that starts from the beginning."""

    @property
    def optimizer_state(self) -> dict[str, Any] | None:
        return self.checkpoint.optimizer if self.checkpoint is not None else None

    @property
    def inside_task(self) -> Checkpoint | None:
        """The checkpoint, where it was written inside task ``next_task`` (``run.checkpoint_every_steps``)."""
        return self.checkpoint if self.checkpoint is not None and self.checkpoint.step_in_task > 0 else None


def resume_point(run_dir: Path, setup: Setup, warn: Callable[[str], None] | None = None) -> ResumePoint:
    """The last intact checkpoint of an interrupted run, checked against the spec and budget it is resumed with.

    A run stopped before its first checkpoint (during the base evaluation) has none: it starts from the beginning.
    """
    checkpoint = Checkpoint.load(run_dir, warn=warn)
    if checkpoint is None:
        return ResumePoint(0, 0, 0, None)
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


def check_resumed_budget(run_dir: Path, checkpoint: Checkpoint, setup: Setup) -> None:
    """A resumed run must train as many steps per task as its first start did (the budget cache may have moved)."""
    recorded = next((r["budget"]["steps_per_task"] for r in checkpoint.records[:1] if "budget" in r), None)
    if recorded is not None and recorded != setup.steps_per_task:
        raise FomoError(
            f"{run_dir}: this run trained {recorded} steps per task, the budget now gives {setup.steps_per_task} "
            "(a re-measured memory multiplier?); resume where the budget cache of the first start is"
        )


def component_providers(setup: Setup) -> dict[str, dict[str, str]]:
    """Which distribution and version provided each component of the run, by the spec's key path."""
    return {
        resolved.where: {
            "kind": resolved.component.kind,
            "name": resolved.name,
            "distribution": resolved.component.provider.distribution,
            "version": resolved.component.provider.version,
        }
        for resolved in setup.components.all()
    }


def changed_providers(records: list[dict[str, Any]], providers: dict[str, dict[str, str]]) -> str:
    """What differs between the providers the last record names and the installed ones (empty when nothing does)."""
    recorded = next((record["providers"] for record in reversed(records) if "providers" in record), None)
    if recorded is None:
        return ""
    changes = [
        f"{where} {now['name']!r} comes from {now['distribution']} {now['version']} (was {then['distribution']} {then['version']})"
        for where, now in providers.items()
        if (then := recorded.get(where)) is not None and (then["distribution"], then["version"]) != (now["distribution"], now["version"])
    ]
    return "; ".join(changes)


class ContinualRun:
    """Runs (or resumes) a stream and writes its run directory."""

    def __init__(self, host: PluginHost, setup: Setup, run_dir: Path, reporter: Reporter) -> None:
        self.host, self.setup, self.run_dir, self.reporter = host, setup, run_dir, reporter
        self.spec, self.runtime, self.bundle = setup.spec, setup.runtime, setup.bundle
        components = setup.components
        self.method: UpdateMethod = components.method.build()
        self.optimizer_builder: OptimizerBuilder = components.optimizer.build()
        self.scheduler = components.scheduler.build()
        self.merger = components.merger.build()
        self.metrics: list[tuple[str, Metric]] = build_metrics(components.metrics)
        self.plan: list[EvaluationSet] = plan_evaluation(setup.data.adaptation + setup.data.zero_shot, self.metrics)
        self.validation_plan = validation_plan(self.plan) if self.spec.evaluation.split == "validation" else None
        self.adaptation_names = [d.name for d in setup.data.adaptation]
        self.zero_shot_names = [d.name for d in setup.data.zero_shot]
        self.tokens = TokenCache(self.bundle)
        self.loader = loader_settings(self.spec)
        self.store = WeightStore(run_dir / WEIGHTS_DIR)
        self.records: list[dict[str, Any]] = []
        """The evaluations so far: what results.jsonl holds, and what the checkpoints carry to check and rebuild it."""
        self.num_tasks = len(setup.tasks)
        self.providers = component_providers(setup)
        self.loggers = self.spec.run.logger_names()
        self.sharding = Sharding(self.runtime) if self.spec.run.fsdp else None
        self.deployed = DeployedWeights(run_dir, self.spec, self.bundle, self.num_tasks)
        self.trial = TrialReporter.from_environment()
        """Set when a search's sweep started this run: it reports after each task and may be pruned."""

    # ------------------------------------------------------------------ the loop

    def execute(self, resume: bool) -> dict[str, Any]:
        spec, runtime = self.spec, self.runtime
        eval_model = copy.deepcopy(self.bundle.model)
        point = resume_point(self.run_dir, self.setup, self.warn) if resume else ResumePoint(0, 0, 0, None)
        if resume and point.checkpoint is None:
            self.reporter.line(f"{self.run_dir} stopped before its first checkpoint; starting it from the beginning")
        base = load_weights(self.run_dir / BASE_WEIGHTS, runtime.device) if point.checkpoint is not None else self.start_run_directory()
        live_model = self.prepare_method(point)
        self.reporter.track_run((self.num_tasks - point.next_task) * self.setup.steps_per_task)
        self.host.hook.on_run_start(
            run_dir=self.run_dir,
            spec=spec,
            num_tasks=self.num_tasks,
            steps_per_task=self.setup.steps_per_task,
            resumed_from_task=point.next_task if point.checkpoint is not None else None,
            loggers=self.loggers,
            process=runtime.process,
        )
        if point.checkpoint is None:
            self.evaluate_and_record(eval_model, base, task=-1, step=0, samples_seen=0, full=True)
            self.save_checkpoint(live_model, 0, 0, 0, None)

        optimizer_state = point.optimizer_state
        global_step, samples_seen = point.global_step, point.samples_seen
        for task in range(point.next_task, self.num_tasks):
            seed_everything(derive_seed(spec.run.seed, "task", task))
            info = TaskInfo(task, self.num_tasks, self.setup.steps_per_task, self.setup.tasks[task])
            self.host.hook.on_task_start(
                run_dir=self.run_dir,
                task=task,
                num_tasks=self.num_tasks,
                steps=info.steps,
                concepts=[str(c) for c in info.concepts],
                loggers=self.loggers,
                process=runtime.process,
            )
            inside = point.inside_task if task == point.next_task else None
            with compile_failures(spec.method.name) if spec.run.compile else contextlib.nullcontext():
                mean_loss, optimizer_state = self.train_task(live_model, info, optimizer_state, (global_step, samples_seen), inside)
            global_step += info.steps
            samples_seen += info.steps * spec.run.batch_size

            finetuned = self.export_weights(live_model)
            decision = self.merger.after_task(MergeInputs(task, self.num_tasks, base, finetuned, self.store, runtime.process))
            fault_point("merge.done")
            if decision.train_from is not None:
                self.import_weights(live_model, decision.train_from)
            deploy = decision.deploy if decision.deploy is not None else finetuned
            self.host.hook.on_task_end(
                run_dir=self.run_dir,
                task=task,
                num_tasks=self.num_tasks,
                steps=info.steps,
                mean_loss=mean_loss,
                loggers=self.loggers,
                process=runtime.process,
            )
            last = task == self.num_tasks - 1
            record = self.evaluate_and_record(eval_model, deploy, task, global_step, samples_seen, full=last, mean_loss=mean_loss)
            if runtime.is_main:
                self.deployed.save(deploy, task + 1)
            self.reporter.line(
                f"task {task + 1}/{self.num_tasks}: loss {mean_loss:.3f}  "
                f"A_KA {record['A_KA']:.4f}  A_ZS {record['A_ZS']:.4f}  GM {record['GM']:.4f}"
            )
            del finetuned, deploy, decision
            self.save_checkpoint(live_model, task + 1, global_step, samples_seen, optimizer_state)
            if self.trial is not None and not last and self.trial_pruned(task):
                raise TrialPruned(f"the search pruned this trial after task {task + 1}/{self.num_tasks}; {self.run_dir} keeps its tasks")

        summary = self.write_summary()
        if runtime.is_main:
            # where this run is an update of a finished run: its release, and the update marked finished
            finish_pending_update(self.run_dir, spec, self.records, self.reporter.line)
        self.host.hook.on_run_end(run_dir=self.run_dir, summary=summary, loggers=self.loggers, process=runtime.process)
        runtime.barrier()
        return summary

    # ------------------------------------------------------------------ starting and resuming

    def start_run_directory(self) -> dict[str, torch.Tensor]:
        """A fresh run (or one restarted before its first checkpoint): the resolved spec and the base weights (theta_0)
        are written first, and any evaluations of an earlier start dropped; returns theta_0."""
        base = {name: tensor.detach().clone() for name, tensor in self.bundle.model.state_dict().items()}
        if self.runtime.is_main:
            write_text_atomic(self.run_dir / SPEC_FILE, self.spec.to_toml())
            fault_point("run.started")
            save_weights(base, self.run_dir / BASE_WEIGHTS, self.deployed.metadata(0))
            restore_records(self.run_dir, [])
        self.runtime.barrier()
        return base

    def prepare_method(self, point: ResumePoint) -> torch.nn.Module:
        """The method wraps the base model (adapters); a resumed run then restores model, method and merger states."""
        # a method's prepare may draw random numbers (adapter initialisation): seed it, so that it does not
        # depend on what ran before (a warm start trained now or loaded from the cache)
        seed_everything(derive_seed(self.spec.run.seed, "method"))
        if self.spec.run.activation_checkpointing:
            enable_activation_checkpointing(self.bundle.model, self.spec.model.name)
        live_model = self.method.prepare(self.bundle.model)
        live_model.to(self.runtime.device)
        if self.sharding is not None:
            self.sharding.shard(live_model)
        if self.spec.run.compile:
            compile_for_training(live_model, self.method)
        checkpoint = point.checkpoint
        if checkpoint is not None:
            self.load_model_state(live_model, checkpoint.model)
            self.method.load_state_dict(checkpoint.method)
            self.merger.load_state_dict(checkpoint.merger)
            self.records = list(checkpoint.records)
            changed = changed_providers(self.records, self.providers)
            if changed:
                self.warn(f"warning: since this run started, {changed}; the evaluations from here on record the new ones")
            if self.runtime.is_main:
                note = restore_records(self.run_dir, self.records)
                if note:
                    self.warn(f"note: {note}")
            at = f"step {checkpoint.step_in_task} of " if checkpoint.step_in_task else ""
            self.reporter.line(f"resuming {self.run_dir} at {at}task {point.next_task + 1}/{self.num_tasks}")
        return live_model

    # ------------------------------------------------------------------ a task

    def pools(self, task: int) -> Pools:
        """The task's batch sources: the pretraining pool, this task's concepts, and the buffer of all earlier tasks'."""
        data = self.setup.data
        by_name = data.by_name

        def pool_of(concepts: list[Concept]) -> Pool:
            segments = []
            for name in dict.fromkeys(c.dataset for c in concepts):
                dataset = by_name[name]
                assert dataset.train is not None
                segments.append(Segment(dataset.train, dataset.train_indices(concepts)))
            return Pool(segments)

        earlier = [c for t in range(task) for c in self.setup.tasks[t]]
        return Pools(
            pretraining=Pool([Segment(d.train, torch.arange(len(d.train))) for d in data.pretraining if d.train is not None]),
            update=pool_of(self.setup.tasks[task]),
            buffer=pool_of(earlier),
        )

    def train_task(
        self,
        live_model: torch.nn.Module,
        info: TaskInfo,
        optimizer_state: dict[str, Any] | None,
        before: tuple[int, int],
        inside: Checkpoint | None = None,
    ) -> tuple[float, Any]:
        """Method setup, the task's steps on mixed batches, the method's end-of-task work; returns (mean loss, optimizer
        state to keep). ``before``: (global step, samples seen) at the task's start; ``inside``: a checkpoint written
        inside this task, to continue from."""
        spec, runtime = self.spec, self.runtime
        optimizers = TaskOptimizers(spec.optimizer, self.optimizer_builder, runtime.device)
        optimizer = start_task(live_model, self.method, info, optimizers)
        step = TrainingStep(
            live_model, optimizer, spec.optimizer, runtime.mixed_precision, self.method, forward_model=self.forward_model(live_model)
        )
        state = LoopState()
        if inside is not None:
            # the task's setup ran again above; what it set up is restored as it stood at the checkpoint
            self.method.load_state_dict(inside.method)
            assert inside.optimizer is not None, "a checkpoint inside a task keeps the optimizer's state"
            self.load_optimizer_state(live_model, optimizer, inside.optimizer)
            if step.scaler is not None and inside.grad_scaler is not None:
                step.scaler.load_state_dict(inside.grad_scaler)
            restore_random_state(inside.random_state)
            state = LoopState(inside.step_in_task, inside.task_loss_sum)
        elif optimizer_state is not None and not spec.optimizer.reset_per_task:
            self.load_optimizer_state(live_model, optimizer, optimizer_state)
        # a checkpoint inside the task was taken in training mode: switching again changes nothing
        optimizers.train_mode(optimizer)
        generator = torch.Generator().manual_seed(derive_seed(spec.run.seed, "data", info.index))
        pools = self.pools(info.index)
        batches = MixedBatches(pools, spec.run.batch_size, spec.data.mixture, generator)
        label = f"task {info.index + 1}/{self.num_tasks}"
        loop = StepLoop(step, lambda index: self.scheduler(index, info.steps, info.index, self.num_tasks), runtime.device, label)
        step_log = self.step_log(info)
        transfer = DeviceTransfer(runtime, self.bundle, self.tokens)

        def checkpoint_inside(reached: LoopState) -> None:
            steps_before, samples_before = before
            scaler = step.scaler.state_dict() if step.scaler is not None else None
            self.save_checkpoint(
                live_model,
                info.index,
                steps_before + reached.steps_done,
                samples_before + reached.steps_done * spec.run.batch_size,
                self.optimizer_state(live_model, optimizer),
                inside=reached,
                grad_scaler=scaler,
            )

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
        kept = None if spec.optimizer.reset_per_task else self.optimizer_state(live_model, optimizer)
        return mean_loss, kept

    # ------------------------------------------------------------------ weights and states in and out (whole, also when sharded)

    def forward_model(self, live_model: torch.nn.Module) -> torch.nn.Module:
        """The model as the step runs it forward: sharded (it synchronises itself), or wrapped for data parallelism."""
        return live_model if self.sharding is not None else self.runtime.wrap_for_training(live_model)

    def export_weights(self, live_model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The full weights under the base model's names (a sharded model's are gathered on every process)."""
        return self.sharding.full_weights(live_model) if self.sharding is not None else self.method.export_weights(live_model)

    def import_weights(self, live_model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
        if self.sharding is not None:
            self.sharding.load_weights(live_model, weights)
        else:
            self.method.import_weights(live_model, weights)

    def model_state(self, live_model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The live model's state (adapters included) for a checkpoint, on the CPU."""
        state = self.sharding.full_weights(live_model) if self.sharding is not None else live_model.state_dict()
        return {name: tensor.detach().cpu().clone() for name, tensor in state.items()}

    def load_model_state(self, live_model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        if self.sharding is not None:
            self.sharding.load_weights(live_model, state)
        else:
            live_model.load_state_dict(state, strict=True)

    def optimizer_state(self, live_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return self.sharding.optimizer_state(live_model, optimizer) if self.sharding is not None else optimizer.state_dict()

    def load_optimizer_state(self, live_model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        if self.sharding is not None:
            self.sharding.load_optimizer_state(live_model, optimizer, state)
        else:
            optimizer.load_state_dict(state)

    def step_log(self, info: TaskInfo) -> StepLog | None:
        """The per-step report to the loggers, where the spec turns one on (the main process reports)."""
        if not self.loggers or not self.runtime.is_main:
            return None
        return StepLog(
            self.host.hook,
            self.run_dir,
            self.loggers,
            self.spec.run.log_every_steps,
            info.index,
            self.num_tasks,
            info.steps,
            lambda step: self.spec.optimizer.lr * self.scheduler(step, info.steps, info.index, self.num_tasks),
            self.runtime.process,
        )

    # ------------------------------------------------------------------ evaluation, checkpoint, summary

    def evaluate_and_record(
        self,
        eval_model: torch.nn.Module,
        weights: dict[str, torch.Tensor],
        task: int,
        step: int,
        samples_seen: int,
        full: bool,
        mean_loss: float | None = None,
    ) -> dict[str, Any]:
        eval_model.load_state_dict(weights, strict=True)
        bundle = ModelBundle(
            eval_model, self.bundle.tokenizer, self.bundle.image_size, self.bundle.image_mean, self.bundle.image_std, self.bundle.name
        )
        fraction = 1.0 if full else self.spec.evaluation.subset_fraction
        generator = torch.Generator().manual_seed(derive_seed(self.spec.run.seed, "evaluation", task))
        started = time.perf_counter()
        label = "base model" if task < 0 else f"task {task + 1}/{self.num_tasks}"
        with preserved_rng(), self.reporter.bar(f"{label}: evaluating", len(self.plan)) as bar:
            metrics, scores = evaluate(
                self.runtime, bundle, self.plan, self.spec.evaluation.batch_size, fraction, generator, lambda name: bar.advance()
            )
        record: dict[str, Any] = {
            "task": task,
            "step": step,
            "samples_seen": samples_seen,
            "subset_fraction": fraction,
            "metrics": metrics,
            "scores": scores,
            **aggregate(scores, self.adaptation_names, self.zero_shot_names),
            "eval_seconds": round(time.perf_counter() - started, 3),
        }
        if mean_loss is not None:
            record["train_loss"] = mean_loss
        budget = self.setup.budget
        record["budget"] = budget.as_record()
        record["compute"] = {"gflops": (task + 1) * budget.gflops_per_task, "maf": (task + 1) * budget.maf_per_task}
        record["groups"] = {"adaptation": self.adaptation_names, "zero_shot": self.zero_shot_names}
        record["providers"] = self.providers
        if task >= 0:
            record["task_datasets"] = dict(Counter(concept.dataset for concept in self.setup.tasks[task]))
        if task < 0:
            # images a dataset component could not read and skipped (under its limit): reported once, with the base model
            by_name = self.setup.data.by_name
            skipped = {name: int(cast(SupportsInt, d.info["skipped_images"])) for name, d in by_name.items() if "skipped_images" in d.info}
            if skipped:
                record["skipped_images"] = skipped
        if self.validation_plan is not None:
            record["validation"] = self.evaluate_validation(bundle, task, fraction)
        self.records.append(record)
        if self.runtime.is_main:
            append_record(self.run_dir, record)
            fault_point("evaluation.recorded")
        self.host.hook.on_evaluation(run_dir=self.run_dir, record=record, loggers=self.loggers, process=self.runtime.process)
        return record

    def evaluate_validation(self, bundle: ModelBundle, task: int, fraction: float) -> dict[str, Any]:
        """The same evaluation on the validation splits (``evaluation.split = "validation"``): what a search tunes on."""
        assert self.validation_plan is not None
        generator = torch.Generator().manual_seed(derive_seed(self.spec.run.seed, "validation", task))
        with preserved_rng():
            metrics, scores = evaluate(self.runtime, bundle, self.validation_plan, self.spec.evaluation.batch_size, fraction, generator)
        return {"metrics": metrics, "scores": scores, **aggregate(scores, self.adaptation_names, self.zero_shot_names)}

    def trial_pruned(self, task: int) -> bool:
        """Report the task to the search (main process) and whether its pruner stopped the trial (every process)."""
        assert self.trial is not None
        if self.runtime.is_main:
            self.trial.after_task(self.run_dir, task, self.records, self.warn)
        self.runtime.barrier()
        return (self.run_dir / PRUNED_FILE).is_file()

    def warn(self, message: str) -> None:
        """Warnings and notes a user must see even with --quiet (a damaged file, a rebuilt one)."""
        if self.runtime.is_main:
            print(message, file=sys.stderr)

    def save_checkpoint(
        self,
        live_model: torch.nn.Module,
        next_task: int,
        global_step: int,
        samples_seen: int,
        optimizer_state: Any,
        inside: LoopState | None = None,
        grad_scaler: dict[str, Any] | None = None,
    ) -> None:
        """Everything needed to continue exactly (the main process writes it, checksummed; see checkpoint.py); never a
        model gone non-finite.

        ``inside``: where the loop stands in task ``next_task`` (a checkpoint inside a task), with the random
        generators' states and the optimizer's and gradient scaler's of that task.
        """
        finite = self.sharding.all_finite(live_model) if self.sharding is not None else all_finite(live_model)
        if not finite:
            shown = next_task + 1 if inside is not None else next_task  # the task trained last, counted from 1
            where = f"task {shown}/{self.num_tasks}" if shown else "the base model"
            raise TrainingDiverged(
                f"{where}: the model's weights are no longer finite; the run stopped, its last checkpoint is kept; "
                "lower optimizer.lr or check the data"
            )
        model_state = self.model_state(live_model)  # gathered by every process when the model is sharded
        # every process has written its merger's files before the manifest lists them
        self.runtime.barrier()
        if self.runtime.is_main:
            Checkpoint(
                next_task=next_task,
                records=list(self.records),
                global_step=global_step,
                samples_seen=samples_seen,
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

    def write_summary(self) -> dict[str, Any]:
        if not self.runtime.is_main:
            return {}
        spec = self.spec
        summary = summarise(self.records)
        if self.validation_plan is not None:
            summary["validation"] = summarise(split_records(self.records, "validation"))
        summary["run"] = {"name": spec.run.name, "num_tasks": self.num_tasks, "steps_per_task": self.setup.steps_per_task}
        summary["method"], summary["merger"] = spec.method.name, spec.merger.name
        summary["budget"] = self.setup.budget.as_record()
        summary["providers"] = self.providers
        summary["evaluation_sets"] = evaluation_sets(self.records)
        write_summary(self.run_dir, summary)
        fault_point("run.summarised")
        return summary
