"""The continual loop of a whole run (DESIGN §3).

build model (theta_0) -> evaluate theta_0 (task -1)
for each task: mixed batches -> method setup -> train -> end-of-task work
               -> merger decides train-from and deploy weights
               -> evaluate deploy weights -> record -> checkpoint
-> summary
"""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from ..budget import Budget, MeasurementError, resolve_budget, unmeasured_budget
from ..components import BuildContext, MergeInputs, Metric, ModelBundle, TaskInfo, UpdateMethod
from ..data import Concept, ImageTextDataset
from ..deployed import DeployedWeights
from ..errors import FomoError, SpecError
from ..model_inputs import TokenCache
from ..plugins import PluginHost
from ..progress import Reporter
from ..results import aggregate, append_record, read_records, summarise, truncate_records, write_summary
from ..spec import RunSpec, validate_components
from ..weights import WeightStore, load_weights, save_weights
from .checkpoint import Checkpoint
from .evaluation import EvaluationSet, build_metrics, evaluate, plan_evaluation
from .loader import DeviceTransfer, LoaderSettings, TaskBatches
from .mixture import MixedBatches, Pool, Segment
from .runtime import Runtime, derive_seed, preserved_rng, seed_everything
from .step_log import StepLog
from .stream import build_tasks
from .training import StepLoop, TaskDataAccess, default_optimizer_factory
from .warm_start import warm_start, warm_start_path

SPEC_FILE = "spec.toml"
CACHE_VARIABLE = "FOMO_CACHE_DIR"


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fomo-host"


@dataclass
class DataSelection:
    """The run's datasets by purpose."""

    pretraining: list[ImageTextDataset]
    adaptation: list[ImageTextDataset]
    zero_shot: list[ImageTextDataset]
    by_name: dict[str, ImageTextDataset] = field(default_factory=dict)


@dataclass
class Setup:
    """Everything built from a spec before the first step; building it is the validation of the spec."""

    spec: RunSpec
    params: dict[str, BaseModel]
    runtime: Runtime
    bundle: ModelBundle
    data: DataSelection
    tasks: list[list[Concept]]
    steps_per_task: int
    budget: Budget


def steps_per_task(spec: RunSpec, host: PluginHost | None = None, cache_dir: Path | None = None) -> int:
    """Steps per task under the spec's budget; a budget in memory-adjusted FLOPs measures the method (cached)."""
    if spec.budget.steps_per_task is not None:
        return spec.budget.steps_per_task
    if spec.budget.samples_per_task is not None:
        return max(1, -(-spec.budget.samples_per_task // spec.run.batch_size))
    from ..plugins import load_plugins

    return resolve_budget(host or load_plugins(), spec, cache_dir or default_cache_dir()).steps_per_task


def check_loggers(host: PluginHost, spec: RunSpec) -> None:
    """Every name in run.loggers must be a logger some installed plugin provides, and able to work here."""
    provided = sorted({name for names in host.hook.logger_names() for name in names or ()})
    for name in spec.run.loggers:
        if name not in provided:
            raise SpecError(f"run.loggers: no installed plugin provides logger {name!r}; available: {', '.join(provided) or 'none'}")
    if spec.run.loggers:
        problems = [problem for answer in host.hook.logger_problems(spec=spec, loggers=list(spec.run.loggers)) for problem in answer or ()]
        if problems:
            raise SpecError(f"run.loggers: {problems[0]}")


def _build(host: PluginHost, kind: str, name: str, params: BaseModel, *context: Any) -> Any:
    component = host.registry.get(kind, name)
    try:
        return component.factory(params, *context)
    except FomoError:
        raise
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        raise FomoError(f"{kind} {name!r}: {exc}") from exc


def select_datasets(spec: RunSpec, datasets: list[ImageTextDataset]) -> DataSelection:
    by_name: dict[str, ImageTextDataset] = {}
    for dataset in datasets:
        if dataset.name in by_name:
            raise SpecError(f"two datasets are named {dataset.name!r}; dataset names must be unique across data.sources")
        by_name[dataset.name] = dataset

    def choose(key: str, role: str, listed: list[str] | None, split: str) -> list[ImageTextDataset]:
        if listed is None:
            chosen = [d for d in datasets if d.role == role]
        else:
            unknown = [name for name in listed if name not in by_name]
            if unknown:
                raise SpecError(f"data.{key}: unknown dataset {unknown[0]!r}; available: {', '.join(sorted(by_name))}")
            chosen = [by_name[name] for name in listed]
        for dataset in chosen:
            if getattr(dataset, split) is None or len(getattr(dataset, split)) == 0:
                raise SpecError(f"data.{key}: dataset {dataset.name!r} has no {split} split, which a {role} set needs")
        return chosen

    selection = DataSelection(
        pretraining=choose("pretraining", "pretraining", spec.data.pretraining, "train"),
        adaptation=choose("adaptation", "adaptation", spec.data.adaptation, "train"),
        zero_shot=choose("zero_shot", "zero_shot", spec.data.zero_shot, "test"),
        by_name=by_name,
    )
    for dataset in selection.adaptation:
        if dataset.test is None or len(dataset.test) == 0:
            raise SpecError(f"data.adaptation: dataset {dataset.name!r} has no test split to measure knowledge accumulation")
    if not selection.adaptation:
        raise SpecError("data: no adaptation datasets, so the stream is empty; list some in data.adaptation")
    return selection


def prepare(host: PluginHost, spec: RunSpec, reporter: Reporter, cache_dir: Path | None = None, warm: bool = True) -> Setup:
    """Validate the spec against the plugins and build model, data and stream: no training yet."""
    params = validate_components(spec, host.registry)
    check_loggers(host, spec)
    cache_dir = cache_dir or default_cache_dir()
    runtime = Runtime.create(spec.run.precision, spec.run.cpu)
    if spec.run.batch_size % runtime.world_size:
        raise SpecError(f"run.batch_size {spec.run.batch_size} must be divisible by the {runtime.world_size} processes")
    seed_everything(derive_seed(spec.run.seed, "build"))
    context = BuildContext(seed=spec.run.seed, cache_dir=cache_dir, device=runtime.device, progress=reporter.bar)
    bundle: ModelBundle = _build(host, "model", spec.model.name, params["model"], context)
    bundle.model.to(runtime.device)
    context.image_size = bundle.image_size

    datasets: list[ImageTextDataset] = []
    for index, source in enumerate(spec.data.sources):
        built = _build(host, "dataset", source.name, params[f"data.sources.{index}"], context)
        datasets.extend(built)
    data = select_datasets(spec, datasets)
    concepts = [concept for dataset in data.adaptation for concept in dataset.concepts()]
    if spec.data.num_tasks > len(concepts):  # checked before any warm start trains
        raise SpecError(f"data.num_tasks is {spec.data.num_tasks} but the stream has only {len(concepts)} concepts; lower num_tasks")

    if spec.model.warm_start is not None and warm:
        if not data.pretraining:
            raise SpecError("model.warm_start needs a pretraining pool; no dataset has role 'pretraining' (see data.pretraining)")
        pool = [d.train for d in data.pretraining if d.train is not None]
        path = warm_start_path(spec.model, pool, spec.run.seed, cache_dir)
        if path.is_file():
            warm_start(runtime, bundle, spec.model, pool, spec.run.seed, cache_dir, path=path)
            reporter.line(f"warm start: base model loaded from cache {path}")
        else:
            with reporter.bar("warm start: pretraining the base model", spec.model.warm_start.steps) as bar:
                warm_start(
                    runtime,
                    bundle,
                    spec.model,
                    pool,
                    spec.run.seed,
                    cache_dir,
                    on_step=lambda step, loss: bar.advance(),
                    loader=LoaderSettings(prefetch=spec.data.prefetch, workers=spec.data.workers),
                    path=path,
                )
            reporter.line(f"base model: {path} (cached for later runs)")

    context.datasets = data.by_name
    context.bundle = bundle
    ordering = _build(host, "ordering", spec.data.ordering.name, params["data.ordering"], context)
    tasks = build_tasks(concepts, ordering, spec.data.num_tasks)
    # the main process measures the budget (or reads the cache) first, so that every process uses the same figures
    if not runtime.is_main:
        runtime.barrier()
    try:
        budget = resolve_budget(host, spec, cache_dir, runtime.device)
    except MeasurementError as exc:
        if spec.budget.maf_per_task is not None:
            raise FomoError(f"budget.maf_per_task: {exc}; give steps_per_task or samples_per_task instead") from exc
        # a budget in steps or samples does not need the figures: train, and record none
        reporter.line(f"warning: {exc}; the run records no compute figures")
        budget = unmeasured_budget(spec)
    if runtime.is_main:
        runtime.barrier()
    return Setup(spec, params, runtime, bundle, data, tasks, budget.steps_per_task, budget)


class ContinualRun:
    """Runs (or resumes) a stream and writes its run directory."""

    def __init__(self, host: PluginHost, setup: Setup, run_dir: Path, reporter: Reporter) -> None:
        self.host, self.setup, self.run_dir, self.reporter = host, setup, run_dir, reporter
        spec, params = setup.spec, setup.params
        self.spec, self.runtime, self.bundle = spec, setup.runtime, setup.bundle
        self.method: UpdateMethod = _build(host, "method", spec.method.name, params["method"])
        self.scheduler = _build(host, "scheduler", spec.scheduler.name, params["scheduler"])
        self.merger = _build(host, "merger", spec.merger.name, params["merger"])
        self.metrics: list[tuple[str, Metric]] = build_metrics(host, spec, params)
        self.plan: list[EvaluationSet] = plan_evaluation(setup.data.adaptation + setup.data.zero_shot, self.metrics)
        self.adaptation_names = [d.name for d in setup.data.adaptation]
        self.zero_shot_names = [d.name for d in setup.data.zero_shot]
        self.tokens = TokenCache(self.bundle)
        self.loader = LoaderSettings(prefetch=spec.data.prefetch, workers=spec.data.workers)
        self.store = WeightStore(run_dir / "weights")
        self.num_tasks = len(setup.tasks)
        self.deployed = DeployedWeights(run_dir, spec, self.bundle, self.num_tasks)

    # ------------------------------------------------------------------ the loop

    def execute(self, resume: bool) -> dict[str, Any]:
        spec, runtime = self.spec, self.runtime
        base_model = self.bundle.model
        eval_model = copy.deepcopy(base_model)
        if resume:
            checkpoint = Checkpoint.load(self.run_dir)
            if checkpoint.spec_fingerprint != spec.fingerprint():
                raise FomoError(
                    f"{self.run_dir}: the spec differs from the one this run started with ({self.run_dir / SPEC_FILE}); "
                    "resume with the same spec and overrides"
                )
            base = load_weights(self.run_dir / "weights" / "base.safetensors", runtime.device)
        else:
            checkpoint = None
            base = {name: tensor.detach().clone() for name, tensor in base_model.state_dict().items()}
            if runtime.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                (self.run_dir / SPEC_FILE).write_text(spec.to_toml(), encoding="utf-8")
                save_weights(base, self.run_dir / "weights" / "base.safetensors", self.deployed.metadata(0))
            runtime.barrier()

        # a method's prepare may draw random numbers (adapter initialisation): seed it, so that it does not
        # depend on what ran before (a warm start trained now or loaded from the cache)
        seed_everything(derive_seed(spec.run.seed, "method"))
        live_model = self.method.prepare(base_model)
        live_model.to(runtime.device)
        optimizer_state = None
        if checkpoint is not None:
            live_model.load_state_dict(checkpoint.model, strict=True)
            self.method.load_state_dict(checkpoint.method)
            self.merger.load_state_dict(checkpoint.merger)
            optimizer_state = checkpoint.optimizer
            first_task, global_step, samples_seen = checkpoint.next_task, checkpoint.global_step, checkpoint.samples_seen
            if runtime.is_main:
                truncate_records(self.run_dir, checkpoint.records)
            recorded = next((r["budget"]["steps_per_task"] for r in read_records(self.run_dir)[:1] if "budget" in r), None)
            if recorded is not None and recorded != self.setup.steps_per_task:
                raise FomoError(
                    f"{self.run_dir}: this run trained {recorded} steps per task, the budget now gives {self.setup.steps_per_task} "
                    "(a re-measured memory multiplier?); resume where the budget cache of the first start is"
                )
            self.reporter.line(f"resuming {self.run_dir} at task {first_task + 1}/{self.num_tasks}")
        else:
            first_task, global_step, samples_seen = 0, 0, 0

        self.reporter.track_run((self.num_tasks - first_task) * self.setup.steps_per_task)
        loggers = list(spec.run.loggers)
        self.host.hook.on_run_start(
            run_dir=self.run_dir,
            spec=spec,
            num_tasks=self.num_tasks,
            steps_per_task=self.setup.steps_per_task,
            resumed_from_task=first_task if resume else None,
            loggers=loggers,
        )
        if checkpoint is None:
            self._evaluate_and_record(eval_model, base, task=-1, step=0, samples_seen=0, full=True)
            self._checkpoint(live_model, 0, 0, 0, None)

        for task in range(first_task, self.num_tasks):
            seed_everything(derive_seed(spec.run.seed, "task", task))
            info = TaskInfo(task, self.num_tasks, self.setup.steps_per_task, self.setup.tasks[task])
            self.host.hook.on_task_start(
                run_dir=self.run_dir,
                task=task,
                num_tasks=self.num_tasks,
                steps=info.steps,
                concepts=[str(c) for c in info.concepts],
                loggers=loggers,
            )
            mean_loss, optimizer_state = self._train_task(live_model, info, optimizer_state)
            global_step += info.steps
            samples_seen += info.steps * spec.run.batch_size

            finetuned = self.method.export_weights(live_model)
            decision = self.merger.after_task(MergeInputs(task, self.num_tasks, base, finetuned, self.store))
            if decision.train_from is not None:
                self.method.import_weights(live_model, decision.train_from)
            deploy = decision.deploy if decision.deploy is not None else finetuned
            self.host.hook.on_task_end(
                run_dir=self.run_dir, task=task, num_tasks=self.num_tasks, steps=info.steps, mean_loss=mean_loss, loggers=loggers
            )
            last = task == self.num_tasks - 1
            record = self._evaluate_and_record(eval_model, deploy, task, global_step, samples_seen, full=last, mean_loss=mean_loss)
            if runtime.is_main:
                self.deployed.save(deploy, task + 1)
            self.reporter.line(
                f"task {task + 1}/{self.num_tasks}: loss {mean_loss:.3f}  "
                f"A_KA {record['A_KA']:.4f}  A_ZS {record['A_ZS']:.4f}  GM {record['GM']:.4f}"
            )
            del finetuned, deploy, decision
            self._checkpoint(live_model, task + 1, global_step, samples_seen, optimizer_state)

        summary = summarise(read_records(self.run_dir)) if runtime.is_main else {}
        if runtime.is_main:
            summary["run"] = {"name": spec.run.name, "num_tasks": self.num_tasks, "steps_per_task": self.setup.steps_per_task}
            summary["method"], summary["merger"] = spec.method.name, spec.merger.name
            summary["budget"] = self.setup.budget.as_record()
            write_summary(self.run_dir, summary)
        self.host.hook.on_run_end(run_dir=self.run_dir, summary=summary, loggers=loggers)
        runtime.barrier()
        return summary

    # ------------------------------------------------------------------ pieces

    def _pools(self, task: int) -> dict[str, Pool]:
        data = self.setup.data
        pretraining = Pool([Segment(d.train, torch.arange(len(d.train))) for d in data.pretraining if d.train is not None])
        by_name = data.by_name

        def pool_of(concepts: list[Concept]) -> Pool:
            segments = []
            for name in dict.fromkeys(c.dataset for c in concepts):
                dataset = by_name[name]
                assert dataset.train is not None
                segments.append(Segment(dataset.train, dataset.train_indices(concepts)))
            return Pool(segments)

        earlier = [c for t in range(task) for c in self.setup.tasks[t]]
        return {"pretraining": pretraining, "update": pool_of(self.setup.tasks[task]), "buffer": pool_of(earlier)}

    def _train_task(self, live_model: torch.nn.Module, info: TaskInfo, optimizer_state: dict[str, Any] | None) -> tuple[float, Any]:
        spec = self.spec
        named = self.method.trainable_parameters(live_model, info)
        trainable = {id(p) for _, p in named}
        for parameter in live_model.parameters():
            parameter.requires_grad_(id(parameter) in trainable)
        optimizer = self.method.build_optimizer(named, default_optimizer_factory(spec.optimizer, self.runtime.device))
        if optimizer_state is not None and not spec.optimizer.reset_per_task:
            optimizer.load_state_dict(optimizer_state)
        generator = torch.Generator().manual_seed(derive_seed(spec.run.seed, "data", info.index))
        pools = self._pools(info.index)
        batches = MixedBatches(pools, spec.run.batch_size, spec.data.mixture, generator)
        loop = StepLoop(
            runtime=self.runtime,
            bundle=self.bundle,
            tokens=self.tokens,
            model=live_model,
            optimizer=optimizer,
            optimizer_spec=spec.optimizer,
            lr_factor=lambda step: self.scheduler(step, info.steps, info.index, self.num_tasks),
            method=self.method,
        )
        step_log = self._step_log(info)
        with self.reporter.bar(f"task {info.index + 1}/{self.num_tasks}: training", info.steps, run_steps=True) as bar:

            def on_step(step: int, loss: torch.Tensor) -> None:
                note = f"loss {float(loss):.3f}" if self.reporter.interactive and step % 25 == 0 else None
                bar.advance(1, note)
                if step_log is not None:
                    step_log(step, loss)

            transfer = DeviceTransfer(self.runtime, self.bundle, self.tokens)
            with TaskBatches(batches, transfer, info.steps, settings=self.loader) as device_batches:
                mean_loss = loop.run(device_batches, info.steps, on_step)
        end_task_seed = derive_seed(spec.run.seed, "end-task", info.index)
        task_data = TaskDataAccess(self.runtime, self.bundle, self.tokens, pools["update"], spec.run.batch_size, end_task_seed, self.loader)
        live_model.eval()
        self.method.end_task(live_model, info, task_data)
        for parameter in live_model.parameters():
            parameter.requires_grad_(False)
        kept = None if spec.optimizer.reset_per_task else optimizer.state_dict()
        return mean_loss, kept

    def _step_log(self, info: TaskInfo) -> StepLog | None:
        """The per-step report to the loggers, where the spec turns one on (the main process reports)."""
        if not self.spec.run.loggers or not self.runtime.is_main:
            return None
        return StepLog(
            self.host.hook,
            self.run_dir,
            list(self.spec.run.loggers),
            self.spec.run.log_every_steps,
            info.index,
            self.num_tasks,
            info.steps,
            lambda step: self.spec.optimizer.lr * self.scheduler(step, info.steps, info.index, self.num_tasks),
        )

    def _evaluate_and_record(
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
        if task >= 0:
            record["task_datasets"] = dict(Counter(concept.dataset for concept in self.setup.tasks[task]))
        if task < 0:
            # images a dataset component could not read and skipped (under its limit): reported once, with the base model
            by_name = self.setup.data.by_name
            skipped = {name: int(d.info["skipped_images"]) for name, d in by_name.items() if "skipped_images" in d.info}
            if skipped:
                record["skipped_images"] = skipped
        if self.runtime.is_main:
            append_record(self.run_dir, record)
        self.host.hook.on_evaluation(run_dir=self.run_dir, record=record, loggers=list(self.spec.run.loggers))
        return record

    def _checkpoint(self, live_model: torch.nn.Module, next_task: int, step: int, samples: int, optimizer_state: Any) -> None:
        if self.runtime.is_main:
            Checkpoint(
                next_task=next_task,
                records=next_task + 1,
                global_step=step,
                samples_seen=samples,
                spec_fingerprint=self.spec.fingerprint(),
                model={k: v.detach().cpu().clone() for k, v in live_model.state_dict().items()},
                method=self.method.state_dict(),
                merger=self.merger.state_dict(),
                optimizer=optimizer_state,
            ).save(self.run_dir)
        self.runtime.barrier()
