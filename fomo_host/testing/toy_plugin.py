"""The components the conformance suites' runs use around the component under test, as one plugin.

A suite that runs a whole stream (methods, launchers) needs a model, data, an
ordering, a scheduler, a metric and a merger besides the plugin it tests. They are
here, in the host's testing package, so a plugin's CI installs only ``fomo-host[testing]``
and that plugin; their names start with ``conformance-`` and are registered only where
a suite asks for them:

- in the test process, ``load_plugins(extra=TOY_PLUGINS)`` (what the suites call);
- in the processes a run starts (``accelerate launch``, a launcher's runs), the
  environment variable ``FOMO_PLUGIN_MODULES`` names this module
  (:func:`toy_environment` gives it), which the host loads as a plugin.

``conformance-clip``
    :class:`~fomo_host.testing.transformer_clip.TransformerCLIP`: open_clip's layout at toy size.
``conformance-data``
    a pretraining pool, two adaptation sets and a held-out zero-shot set, each class a colour.
``conformance-in-order`` / ``conformance-constant``
    the stream in the datasets' order; a learning-rate factor of 1.
``conformance-accuracy``
    zero-shot top-1 accuracy on the classification sets.
``conformance-adamw``
    torch's AdamW with its defaults: the optimizer of the suites' runs.
``conformance-full``
    a method that trains every parameter (for the suites of other kinds: launchers).
``conformance-recorder``
    a merger that changes nothing; the main process keeps each task's fine-tuned weights in the run's
    weight store (``conformance-finetuned-<task>``), and with ``processes_dir`` set every process leaves a
    file ``task-<task>.rank-<rank>-of-<world size>`` there: which processes ran which tasks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from .. import hookimpl
from ..components import (
    BuildContext,
    EvaluationContext,
    MergeDecision,
    MergeInputs,
    Merger,
    Metric,
    ModelBundle,
    OptimizerBuilder,
    OptimizerContext,
    Scheduler,
    TaskInfo,
    UpdateMethod,
)
from ..data import Concept, ImageTextDataset
from ..model_inputs import prepare_images
from ..params import NoParams
from ..plugins import MODULES_VARIABLE
from ..registration import (
    DatasetRegister,
    MergerRegister,
    MethodRegister,
    MetricRegister,
    ModelRegister,
    OptimizerRegister,
    OrderingRegister,
    SchedulerRegister,
)
from .toys import toy_classification_set
from .transformer_clip import transformer_clip_bundle

TOY_MODULE = __name__
TOY_PLUGINS: list[tuple[str, object]] = []
"""``extra`` for :func:`fomo_host.plugins.load_plugins`: this module as a plugin (filled below)."""

MODEL = "conformance-clip"
DATA = "conformance-data"
ORDERING = "conformance-in-order"
SCHEDULER = "conformance-constant"
METHOD = "conformance-full"
OPTIMIZER = "conformance-adamw"
METRIC = "conformance-accuracy"
RECORDER = "conformance-recorder"


def finetuned_key(task: int) -> str:
    """The weight store key under which the recorder keeps task ``task``'s fine-tuned weights."""
    return f"conformance-finetuned-{task}"


def toy_environment() -> dict[str, str]:
    """The environment variable that makes a process started by a suite load these components too."""
    present = [name for name in os.environ.get(MODULES_VARIABLE, "").split(",") if name.strip()]
    return {MODULES_VARIABLE: ",".join(dict.fromkeys([*present, TOY_MODULE]))}


def processes_seen(directory: Path) -> dict[int, set[tuple[int, int]]]:
    """What ``conformance-full``
        a method that trains every parameter (for the suites of other kinds: launchers).
    ``conformance-recorder`` left in ``processes_dir``: per task, the ``(rank, world size)`` of each process that ran it."""
    seen: dict[int, set[tuple[int, int]]] = {}
    for path in directory.glob("task-*.rank-*-of-*"):
        task, process = path.name.removeprefix("task-").split(".rank-")
        rank, world_size = process.split("-of-")
        seen.setdefault(int(task), set()).add((int(rank), int(world_size)))
    return seen


# ----------------------------------------------------------------------------- params


class ClipParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(default=16, ge=4, description="input resolution in pixels (a multiple of patch_size)")
    patch_size: int = Field(default=8, ge=1)
    width: int = Field(default=32, ge=4, description="width of both towers (a multiple of heads)")
    layers: int = Field(default=3, ge=1, description="transformer blocks per tower")
    heads: int = Field(default=2, ge=1)
    context_length: int = Field(default=8, ge=2)
    embed_dim: int = Field(default=32, ge=2)


class DataParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    classes: int = Field(default=3, ge=2, description="classes per dataset")
    train_per_class: int = Field(default=8, ge=1)
    test_per_class: int = Field(default=4, ge=1)
    adaptation_sets: int = Field(default=2, ge=1)


class RecorderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    processes_dir: str | None = Field(default=None, description="a folder where every process marks each task it ran")


# ----------------------------------------------------------------------------- components


def build_clip(params: ClipParams, context: BuildContext) -> ModelBundle:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        return transformer_clip_bundle(
            image_size=params.image_size,
            context_length=params.context_length,
            patch_size=params.patch_size,
            width=params.width,
            layers=params.layers,
            heads=params.heads,
            embed_dim=params.embed_dim,
        )


def build_data(params: DataParams, context: BuildContext) -> list[ImageTextDataset]:
    size = context.image_size or 16
    shared: dict[str, Any] = {"classes": params.classes, "per_class": params.train_per_class, "test_per_class": params.test_per_class}
    adaptation = [
        toy_classification_set(f"conformance-task-{index}", image_size=size, role="adaptation", seed=context.seed, **shared)
        for index in range(params.adaptation_sets)
    ]
    return [
        toy_classification_set("conformance-pool", image_size=size, role="pretraining", seed=context.seed, **shared),
        *adaptation,
        toy_classification_set("conformance-held-out", image_size=size, role="zero_shot", seed=context.seed, **shared),
    ]


class InOrder:
    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> list[Concept]:
        return list(concepts)


def build_ordering(params: NoParams, context: BuildContext) -> InOrder:
    return InOrder()


def constant(params: NoParams) -> Scheduler:
    def factor(step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        return 1.0

    return factor


class FullTuning(UpdateMethod):
    """Every parameter trains."""

    supports_fsdp = True

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def trainable_parameters(self, model: torch.nn.Module, task: TaskInfo) -> list[tuple[str, torch.nn.Parameter]]:
        return list(model.named_parameters())


class TopOneAccuracy(Metric):
    """Each test image against every class's mean template embedding; the share whose own class scores highest."""

    primary = "top1"

    def applies_to(self, dataset: ImageTextDataset) -> bool:
        return dataset.task == "classification"

    def __call__(self, bundle: ModelBundle, dataset: ImageTextDataset, context: EvaluationContext) -> dict[str, float]:
        assert dataset.test is not None
        indices = context.subset if context.subset is not None else torch.arange(len(dataset.test))
        prompts = [template.format(name) for name in dataset.classnames for template in dataset.templates]
        with context.autocast():
            texts = bundle.model.encode_text(bundle.tokenizer(prompts).to(context.device), normalize=True).float()  # type: ignore[operator]
            classes = torch.nn.functional.normalize(texts.view(len(dataset.classnames), len(dataset.templates), -1).mean(1), dim=-1)
            correct = 0
            for chunk in torch.split(indices, context.batch_size):
                images = prepare_images(bundle, dataset.test.images(chunk), context.device)
                features = bundle.model.encode_image(images, normalize=True).float()  # type: ignore[operator]
                predicted = (features @ classes.t()).argmax(dim=1).cpu()
                correct += int((predicted == dataset.test.labels[chunk]).sum())
        return {"top1": correct / max(len(indices), 1)}


def build_metric(params: NoParams) -> TopOneAccuracy:
    return TopOneAccuracy()


class RecordingMerger(Merger):
    """Changes nothing. The main process keeps each task's fine-tuned weights in the store; every process marks the tasks
    it ran in ``processes_dir`` (when given)."""

    def __init__(self, processes_dir: Path | None) -> None:
        self.processes_dir = processes_dir

    def after_task(self, inputs: MergeInputs) -> MergeDecision:
        if inputs.process.is_main:
            inputs.store.save(finetuned_key(inputs.task), inputs.finetuned)
        if self.processes_dir is not None:
            self.processes_dir.mkdir(parents=True, exist_ok=True)
            process = inputs.process
            (self.processes_dir / f"task-{inputs.task}.rank-{process.rank}-of-{process.world_size}").touch()
        return MergeDecision()


def build_recorder(params: RecorderParams) -> RecordingMerger:
    return RecordingMerger(Path(params.processes_dir) if params.processes_dir else None)


class ToyAdamW(OptimizerBuilder):
    """torch's AdamW over the method's groups, with the host's lr and weight decay."""

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        return torch.optim.AdamW(groups, lr=context.lr, weight_decay=context.weight_decay)


# ----------------------------------------------------------------------------- registration


@hookimpl
def register_models(register: ModelRegister) -> None:
    register(name=MODEL, factory=build_clip, params=ClipParams, description="A toy CLIP with open_clip's layout (testing only).")


@hookimpl
def register_datasets(register: DatasetRegister) -> None:
    register(name=DATA, factory=build_data, params=DataParams, description="Colour classes: a pool, adaptation and zero-shot sets.")


@hookimpl
def register_orderings(register: OrderingRegister) -> None:
    register(name=ORDERING, factory=build_ordering, params=NoParams, description="The stream in the datasets' order.")


@hookimpl
def register_methods(register: MethodRegister) -> None:
    register(name=METHOD, factory=FullTuning, params=NoParams, description="Trains every parameter.")


@hookimpl
def register_optimizers(register: OptimizerRegister) -> None:
    register(name=OPTIMIZER, factory=ToyAdamW, params=NoParams, description="torch's AdamW (testing only).")


@hookimpl
def register_schedulers(register: SchedulerRegister) -> None:
    register(name=SCHEDULER, factory=constant, params=NoParams, description="A learning-rate factor of 1.")


@hookimpl
def register_metrics(register: MetricRegister) -> None:
    register(name=METRIC, factory=build_metric, params=NoParams, description="Zero-shot top-1 accuracy on classification sets.")


@hookimpl
def register_mergers(register: MergerRegister) -> None:
    register(name=RECORDER, factory=build_recorder, params=RecorderParams, description="Changes nothing; records each task.")


TOY_PLUGINS.append(("fomo-host-testing", sys.modules[__name__]))
