"""Everything built from a spec before the first step: components, runtime, model, data, stream and budget.

Building it is the validation of the spec: ``fomo-host validate`` stops here,
``fomo-host run`` hands the result to :class:`~fomo_host.engine.run.ContinualRun`.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..components import BuildContext, ModelBundle
from ..data import Concept, ImageTextDataset
from ..errors import FomoError, SpecError
from ..locking import waiting_lock
from ..plugins import PluginHost
from ..progress import Reporter
from ..resolve import SpecComponents, resolve_components
from ..spec import RunSpec
from .budget import Budget, MeasurementError, references_declared, resolve_budget, unmeasured_budget
from .loader import LoaderSettings
from .preflight import check_components, check_loggers, check_schedule, check_warm_start_pool
from .runtime import Runtime, derive_seed, seed_everything
from .segments import build_stream, first_concepts
from .warm_start import warm_start, warm_start_path

CACHE_VARIABLE = "FOMO_CACHE_DIR"


def default_cache_dir() -> Path:
    """Where warm-started base models, decoded datasets and budget measurements are kept between runs."""
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
    warm_start: list[ImageTextDataset] = field(default_factory=list)
    """What the base model pretrains on (model.warm_start.data; the pretraining pool when it names none)."""


@dataclass
class Setup:
    """Everything built from a spec before the first step; building it is the validation of the spec."""

    spec: RunSpec
    components: SpecComponents
    runtime: Runtime
    bundle: ModelBundle
    data: DataSelection
    tasks: list[list[Concept]]
    budget: Budget
    cache_dir: Path

    @property
    def steps_per_task(self) -> int:
        return self.budget.steps_per_task


@dataclass
class ModelAndData:
    """The model and the datasets a spec names, built, before any stream, warm start or budget."""

    components: SpecComponents
    runtime: Runtime
    bundle: ModelBundle
    data: DataSelection
    context: BuildContext


def build_model_and_data(host: PluginHost, spec: RunSpec, reporter: Reporter, cache_dir: Path) -> ModelAndData:
    """Validate the spec against the plugins and build its model and datasets (what evaluating weights needs)."""
    components = resolve_components(spec, host.registry)
    runtime = Runtime.create(spec.run.precision, spec.run.cpu)
    if spec.run.batch_size % runtime.world_size:
        raise SpecError(f"run.batch_size {spec.run.batch_size} must be divisible by the {runtime.world_size} processes")
    if spec.run.fsdp:
        check_sharding(spec, runtime, components)
    seed_everything(derive_seed(spec.run.seed, "build"))
    context = BuildContext(seed=spec.run.seed, cache_dir=cache_dir, device=runtime.device, progress=reporter.bar, process=runtime.process)
    bundle: ModelBundle = components.model.build(context)
    bundle.model.to(runtime.device)
    context.image_size = bundle.image_size
    built = [(source, source.build(context)) for source in components.datasets]
    data = select_datasets(spec, [dataset for _, datasets in built for dataset in datasets])
    if spec.evaluation.split == "validation":
        source_of = {dataset.name: f"{source.where} ({source.name})" for source, datasets in built for dataset in datasets}
        check_validation_splits(data.adaptation + data.zero_shot, source_of)
    return ModelAndData(components, runtime, bundle, data, context)


def check_validation_splits(evaluated: list[ImageTextDataset], source_of: dict[str, str]) -> None:
    """``evaluation.split = "validation"`` needs a validation split in every evaluated set: refused before anything trains,
    naming the source that lacks one."""
    missing = next((dataset for dataset in evaluated if dataset.validation is None or len(dataset.validation) == 0), None)
    if missing is not None:
        raise SpecError(
            f"evaluation.split = 'validation': dataset {missing.name!r} of {source_of[missing.name]} has no validation split; give "
            "the source one (synthetic: validation_per_class; file-based sources: validation_fraction) or leave evaluation.split unset"
        )


def prepare(host: PluginHost, spec: RunSpec, reporter: Reporter, cache_dir: Path | None = None, warm: bool = True) -> Setup:
    """Validate the spec against the plugins and build model, data and stream: no training yet."""
    check_loggers(host, spec)
    cache_dir = cache_dir or default_cache_dir()
    built = build_model_and_data(host, spec, reporter, cache_dir)
    components, runtime, bundle, data, context = built.components, built.runtime, built.bundle, built.data, built.context
    concepts = first_concepts(spec, data.adaptation)
    if spec.data.num_tasks > len(concepts):  # checked before any warm start trains
        raise SpecError(f"data.num_tasks is {spec.data.num_tasks} but the stream has only {len(concepts)} concepts; lower num_tasks")
    check_warm_start_pool(spec, data.pretraining)
    # constructors, the evaluation plan and (where the budget fixes the steps) the schedule, before a warm start spends minutes
    fixed = spec.budget.fixed_steps(spec.run.batch_size)
    check_components(components, data.adaptation + data.zero_shot, fixed[1] if fixed else None, spec.data.num_tasks)
    if spec.model.warm_start is not None and warm:
        warm_start_base_model(spec, runtime, bundle, data, cache_dir, reporter)

    context.datasets = data.by_name
    context.bundle = bundle
    tasks = build_stream(spec, data.adaptation, components.ordering.build(context))
    budget = measure_budget(host, spec, runtime, cache_dir, reporter)
    # again with the measured steps and the stream's own number of tasks (an ordering may form its own tasks)
    check_schedule(components.scheduler.name, components.scheduler.build(), budget.steps_per_task, len(tasks))
    return Setup(spec, components, runtime, bundle, data, tasks, budget, cache_dir)


def check_sharding(spec: RunSpec, runtime: Runtime, components: SpecComponents) -> None:
    """run.fsdp needs a method whose weights may stay sharded and several processes (checked before anything trains)."""
    method = components.method.build()
    if not getattr(method, "supports_fsdp", False):
        raise SpecError(
            f"run.fsdp: method {spec.method.name!r} keeps tensors of its own or reshapes weights on their way out, which "
            "needs them whole; train it without run.fsdp (run.activation_checkpointing fits ViT-L/H on one GPU)"
        )
    if runtime.world_size < 2:
        raise SpecError(
            "run.fsdp shards the model over processes, and this run has one; launch several "
            "(accelerate launch --num_processes N -m fomo_host run ...) or set run.fsdp = false"
        )


def loader_settings(spec: RunSpec) -> LoaderSettings:
    """How batches are prepared (``data.prefetch``, ``data.workers``)."""
    return LoaderSettings(prefetch=spec.data.prefetch, workers=spec.data.workers)


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
                raise SpecError(f"{key}: unknown dataset {unknown[0]!r}; available: {', '.join(sorted(by_name))}")
            chosen = [by_name[name] for name in listed]
        for dataset in chosen:
            if getattr(dataset, split) is None or len(getattr(dataset, split)) == 0:
                raise SpecError(f"{key}: dataset {dataset.name!r} has no {split} split, which a {role} set needs")
        return chosen

    selection = DataSelection(
        pretraining=choose("data.pretraining", "pretraining", spec.data.pretraining, "train"),
        adaptation=choose("data.adaptation", "adaptation", spec.data.adaptation, "train"),
        zero_shot=choose("data.zero_shot", "zero_shot", spec.data.zero_shot, "test"),
        by_name=by_name,
    )
    warm_start = spec.model.warm_start
    if warm_start is not None:
        given = warm_start.data
        selection.warm_start = selection.pretraining if given is None else choose("model.warm_start.data", "pretraining", given, "train")
    for dataset in selection.adaptation:
        if dataset.test is None or len(dataset.test) == 0:
            raise SpecError(f"data.adaptation: dataset {dataset.name!r} has no test split to measure knowledge accumulation")
    if not selection.adaptation:
        raise SpecError("data: no adaptation datasets, so the stream is empty; list some in data.adaptation")
    return selection


def warm_start_base_model(
    spec: RunSpec, runtime: Runtime, bundle: ModelBundle, data: DataSelection, cache_dir: Path, reporter: Reporter
) -> None:
    """Pretrain the base model on the pretraining pool (or load the cached result), in place.

    Runs that start together on a cold cache (a study's first runs) pretrain one base model once: the main process
    of each holds a lock beside the cache file while it looks for it and, if missing, pretrains it; the others wait,
    then load it. (The other processes of a multi-process run wait at a barrier meanwhile.)
    """
    assert spec.model.warm_start is not None
    pool = [d.train for d in data.warm_start if d.train is not None]
    path = warm_start_path(spec.model, pool, spec.run.seed, cache_dir)

    def load_cached() -> None:
        warm_start(runtime, bundle, spec.model, pool, spec.run.seed, cache_dir, path=path)
        reporter.line(f"warm start: base model loaded from cache {path}")

    if path.is_file():
        load_cached()
        return

    def waiting(holder: str) -> None:
        reporter.line(f"warm start: another run ({holder}) is pretraining this base model; waiting for it")

    with waiting_lock(path.with_suffix(".lock"), waiting) if runtime.is_main else nullcontext():
        runtime.barrier()  # every process looks for the file only once the main process holds the lock
        if path.is_file():
            load_cached()
            return
        with reporter.bar("warm start: pretraining the base model", spec.model.warm_start.steps) as bar:
            warm_start(
                runtime,
                bundle,
                spec.model,
                pool,
                spec.run.seed,
                cache_dir,
                on_step=lambda step, loss: bar.advance(),
                loader=loader_settings(spec),
                path=path,
            )
    reporter.line(f"base model: {path} (cached for later runs)")


def measure_budget(host: PluginHost, spec: RunSpec, runtime: Runtime, cache_dir: Path, reporter: Reporter) -> Budget:
    """The run's budget; the main process measures it (or reads the cache) first, so that every process uses the same figures."""
    if not runtime.is_main:
        runtime.barrier()
    try:
        if spec.budget.maf_per_task is None and not references_declared(host.registry):
            # the host with no plugin declaring the reference method and optimizer (a plugin's own CI): a budget in steps
            # or samples trains as given, with no figures to measure against
            raise MeasurementError("no installed plugin declares the budget's reference method and optimizer")
        budget = resolve_budget(host, spec, cache_dir, runtime.device)
    except MeasurementError as exc:
        if spec.budget.maf_per_task is not None:
            raise FomoError(f"budget.maf_per_task: {exc}; give steps_per_task or samples_per_task instead") from exc
        # a budget in steps or samples does not need the figures: train, and record none
        reporter.line(f"warning: {exc}; the run records no compute figures")
        budget = unmeasured_budget(spec)
    if runtime.is_main:
        runtime.barrier()
    return budget
