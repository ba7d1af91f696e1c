"""Measuring a method's training step: GFLOPs and peak memory, with the engine's own step (DESIGN §5).

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` over the engine's
:class:`~fomo_host.engine.training.TrainingStep` on the configured model, method and batch, run
on the ``meta`` device: every operation runs with its true shapes but without computing
anything, so a ViT-B-16 step at batch 512 is counted on a CPU (about 25 s on one core). A step
is what the engine runs: the forward pass, the contrastive loss, the method's extra loss, the
backward pass, clipping, the optimizer step (GaLore's projections count) and the method's
after-step work; the method's end-of-task work (an EWC Fisher) is counted once per task and
spread over the task's steps (per-sample work, as a per-sample Fisher, is run for the first
:data:`PROBE_SAMPLES` samples of a batch and the others are counted as repeats of the last sample:
see :class:`CountedTaskData`). Attention is counted as the fused kernels a GPU runs it with
(FlashAttention, memory-efficient attention): their backward pass recomputes the score matrix,
one more ``Q K^T`` product than the decomposed form a CPU runs. That is how the paper's figure
was counted (ViT-B/16, batch 512: 63,394.76 GFLOPs per full fine-tuning step).

Peak memory is measured in one of two ways (``budget.memory_measure``):

- ``cuda``: ``torch.cuda.max_memory_allocated`` during the engine's real measured step on the
  GPU, at the run's precision and with ``run.activation_checkpointing`` as the run trains, less
  what was allocated before the model was moved there;
- ``analytic``: on the meta device, the bytes of the distinct tensors a training step holds
  at once: the model's parameters and buffers, the tensors the method keeps (anchors, a
  Fisher, a teacher model), the gradients of the trainable parameters, the optimizer state,
  and the activations saved for the backward pass (``torch.autograd.graph.saved_tensors_hooks``;
  tensors sharing storage with a parameter are not counted twice). Tensors keep the
  parameters' dtype (meta tensors know no autocast), so this measure ignores ``run.precision``,
  and it counts every activation, as without ``run.activation_checkpointing``.

FLOPs are those of the step itself: activation checkpointing's recomputation is an implementation
choice of the run, not part of a method's cost, and ``run.compile`` changes no count.

Both measurements follow the engine through two tasks: task 0's setup and end-of-task work
(counted), then the first step of task 1 (counted and measured: a regulariser's anchors and
importance are in place, the optimizer state is created in the step). A one-task stream
measures the step of task 0 before its end-of-task work.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import itertools
from collections.abc import Callable, Iterator, Mapping
from types import FunctionType, MethodType, ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ...components import ModelBundle, TaskInfo, TrainBatch, UpdateMethod
from ...errors import FomoError
from ...resolve import ResolvedComponent
from ...spec import RunSpec
from ..runtime import Precision
from ..training import (
    BatchSource,
    TaskDataAccess,
    TaskOptimizers,
    TrainingStep,
    enable_activation_checkpointing,
    finish_task,
    start_task,
)
from .arithmetic import StepCost

DataMaker = Callable[[Precision, BatchSource], TaskDataAccess]
"""Makes the task data the end-of-task work reads: :class:`TaskDataAccess`, or one that counts it."""

PROBE_CAPTION = "a photo of a thing"
GIGA = 1e9
PROBE_SAMPLES = 3
"""Samples of a batch whose per-sample losses the end-of-task count runs; the batch's others are counted as repeats."""


class MeasurementError(FomoError):
    """The method's step could not be run for measuring (plugin code that needs real values on the meta device)."""


def measure_cost(
    spec: RunSpec, method: ResolvedComponent, optimizer: ResolvedComponent, measure: str, built: ModelBundle, precision: str
) -> StepCost:
    """Count FLOPs (and, for the analytic measure, memory) on the meta device; for ``cuda``, memory on the GPU; the
    method trains with ``optimizer`` (its state is part of the step's memory).

    ``built`` is the spec's model as its factory built it (its weights do not matter); ``precision``
    is the run's resolved precision (``no``, ``bf16`` or ``fp16``), used by the ``cuda`` measure.
    """
    try:
        cuda_peak = measure_cuda_peak(spec, method, optimizer, built, precision) if measure == "cuda" else None
        bundle = copy.copy(built)
        bundle.model = copy.deepcopy(built.model).to("meta")
        meta = StreamStart(spec, bundle, torch.device("meta"), Precision("no", "meta"))
        counted = CountedStep()
        with fused_attention():
            meta.run(method, optimizer, counted.step, counted.end_task)
    except FomoError:
        raise
    except Exception as exc:  # plugin code run on meta tensors: value-dependent code cannot run there
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise MeasurementError(
            f"cannot measure method {method.name!r} with optimizer {optimizer.name!r} on model {spec.model.name!r}: {cause}"
        ) from exc
    peak = cuda_peak if cuda_peak is not None else counted.analytic_bytes
    return StepCost(counted.step_flops / GIGA, counted.end_task_flops / GIGA, int(peak), measure)


def measure_cuda_peak(
    spec: RunSpec,
    method: ResolvedComponent,
    optimizer: ResolvedComponent,
    bundle: ModelBundle,
    precision: str,
    device: torch.device | None = None,
    allocator: Any = None,
) -> int:
    """Peak bytes allocated on the GPU during the engine's real measured step, above what was allocated before the
    model arrived: the model, the method's tensors (anchors, a Fisher) and the optimizer state count as they stand
    then; the end-of-task work's transient memory before it does not.

    ``device`` and ``allocator`` (``torch.cuda`` by default: ``synchronize``, ``empty_cache``, ``memory_allocated``,
    ``reset_peak_memory_stats``, ``max_memory_allocated``) let a test follow the measurement on another device.
    """
    allocator = allocator or torch.cuda
    device = device or torch.device("cuda", torch.cuda.current_device())
    gc.collect()
    allocator.empty_cache()
    allocator.synchronize(device)
    before = allocator.memory_allocated(device)
    on_gpu = copy.copy(bundle)
    on_gpu.model = copy.deepcopy(bundle.model).to(device)
    if spec.run.activation_checkpointing:
        enable_activation_checkpointing(on_gpu.model, spec.model.name)
    peaks: list[int] = []

    def measured_step(step: TrainingStep, batch: TrainBatch) -> None:
        allocator.synchronize(device)
        allocator.reset_peak_memory_stats(device)
        step(batch, lr_factor=1.0)
        allocator.synchronize(device)
        peaks.append(allocator.max_memory_allocated(device))

    start = StreamStart(spec, on_gpu, device, Precision(precision, device.type))
    start.run(method, optimizer, measured_step, lambda finish: finish(TaskDataAccess))
    del start, on_gpu
    gc.collect()
    allocator.empty_cache()
    return peaks[-1] - before


class StreamStart:
    """A method on a model through the start of a stream, as the engine trains it: task 0's setup and
    end-of-task work, then the first step of the measured task (task 1, or 0 in a one-task stream)."""

    def __init__(self, spec: RunSpec, bundle: ModelBundle, device: torch.device, precision: Precision) -> None:
        self.spec, self.bundle, self.device, self.precision = spec, bundle, device, precision

    def batch(self) -> TrainBatch:
        size, bundle = self.spec.run.batch_size, self.bundle
        tokens = bundle.tokenizer([PROBE_CAPTION]).expand(size, -1).contiguous()
        if self.device.type == "meta":
            images = torch.empty(size, 3, bundle.image_size, bundle.image_size, device="meta")
        else:
            images = torch.randn(size, 3, bundle.image_size, bundle.image_size, device=self.device)
        return TrainBatch(images=images, tokens=tokens.to(self.device))

    def run(
        self,
        resolved: ResolvedComponent,
        optimizer_component: ResolvedComponent,
        on_step: Callable[[TrainingStep, TrainBatch], object],
        on_end_task: Callable[[Callable[[DataMaker], None]], None],
    ) -> None:
        """``on_step(step, batch)`` takes the measured step; ``on_end_task(finish)`` runs task 0's end-of-task work,
        ``finish(make_data)`` with the task data ``make_data(precision, source)`` gives (:class:`TaskDataAccess`)."""
        spec = self.spec
        num_tasks = spec.data.num_tasks
        measured_task = min(1, num_tasks - 1)
        batch = self.batch()
        method: UpdateMethod = resolved.build()
        model = method.prepare(self.bundle.model)
        model.to(self.device)
        optimizers = TaskOptimizers(spec.optimizer, optimizer_component.build(), self.device)
        for task in range(measured_task + 1):
            info = TaskInfo(task, num_tasks, steps=1, concepts=[])
            optimizer = start_task(model, method, info, optimizers)
            optimizers.train_mode(optimizer)
            if task == measured_task:
                model.train()
                on_step(TrainingStep(model, optimizer, spec.optimizer, self.precision, method), batch)
            optimizers.eval_mode(optimizer)
            if task == 0:
                on_end_task(self._end_task_work(model, method, info, batch))
            del optimizer

    def _end_task_work(self, model: nn.Module, method: UpdateMethod, info: TaskInfo, batch: TrainBatch) -> Callable[[DataMaker], None]:
        """Task 0's end-of-task work on its data: the probe batch, repeated."""

        def source(start: int, stop: int) -> contextlib.AbstractContextManager[Iterator[TrainBatch]]:
            return contextlib.nullcontext(itertools.repeat(batch, stop - start))

        def finish(make_data: DataMaker) -> None:
            finish_task(model, method, info, make_data(self.precision, source))

        return finish


class CountedStep:
    """Counts the FLOPs of the measured step and of the end-of-task work, and tallies the step's memory."""

    def __init__(self) -> None:
        self.step_flops = 0
        self.end_task_flops = 0
        self.analytic_bytes = 0

    def end_task(self, finish: Callable[[DataMaker], None]) -> None:
        made: list[CountedTaskData] = []
        with counting() as flops:

            def make_data(precision: Precision, source: BatchSource) -> TaskDataAccess:
                made.append(CountedTaskData(precision, source, flops))
                return made[-1]

            finish(make_data)
        self.end_task_flops = flops() + sum(data.uncounted_flops for data in made)

    def step(self, step: TrainingStep, batch: TrainBatch) -> None:
        """The engine's step, with its FLOPs counted and the tensors it holds at its peak tallied."""
        memory = StorageTally()
        for tensor in (*step.model.parameters(), *step.model.buffers(), *held_tensors(vars(step.method))):
            memory.add(tensor)
        activations = StorageTally()

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            if tensor not in memory:
                activations.add(tensor)
            return tensor

        def after_optimizer_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            # the gradients and the optimizer state exist together here, before the step clears the gradients
            for parameter in step.trainable:
                if parameter.grad is not None:
                    memory.add(parameter.grad)
            for tensor in held_tensors(optimizer.state):
                memory.add(tensor)

        handle = step.optimizer.register_step_post_hook(after_optimizer_step)
        try:
            with counting() as flops, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                step(batch, lr_factor=1.0)
        finally:
            handle.remove()
        self.step_flops = flops()
        self.analytic_bytes = memory.nbytes + activations.nbytes


class CountedTaskData(TaskDataAccess):
    """Task 0's data for counting its end-of-task work, with per-sample losses counted by extrapolation.

    Every sample of the probe batch has the same shapes (one batch of one caption, repeated), so every
    sample's cycle costs the same FLOPs: the method's work on a sample's loss (its backward pass, what it
    does with the gradient) and the next sample's forward pass. The first :data:`PROBE_SAMPLES` samples of a
    batch are run; the batch's others are counted as repeats of the last full cycle. A per-sample Fisher of
    ViT-B-16 over 8 batches of 512 is otherwise 4,096 single-sample passes on the meta device (over an hour of
    CPU); counted this way it is 24.
    """

    def __init__(self, precision: Precision, source: BatchSource, flops: Callable[[], int]) -> None:
        super().__init__(precision, source)
        self._flops = flops
        self.uncounted_flops = 0

    def sample_losses(self, model: nn.Module, batch: TrainBatch) -> Iterator[torch.Tensor]:
        samples = len(batch.images)
        marks: list[int] = []
        for loss in super().sample_losses(model, batch):
            marks.append(self._flops())
            yield loss
            if len(marks) == PROBE_SAMPLES and samples > PROBE_SAMPLES:
                # the method has used this sample's loss; the next sample's forward pass would start the next cycle
                cycle = marks[-1] - marks[-2]
                self.uncounted_flops += (samples - PROBE_SAMPLES) * cycle
                return


@contextlib.contextmanager
def counting() -> Iterator[Callable[[], int]]:
    """FLOPs of the enclosed work."""
    counter = FlopCounterMode(display=False)
    with counter:
        yield counter.get_total_flops


@contextlib.contextmanager
def fused_attention() -> Iterator[None]:
    """Attention on meta tensors computed as a GPU's fused kernel computes it (memory-efficient attention).

    On the meta device ``scaled_dot_product_attention`` takes its decomposed form, whose backward
    pass has four batched products and which saves the score matrix. FlashAttention and
    memory-efficient attention, which a GPU runs, recompute the scores in the backward pass (five
    products, as FlopCounterMode counts them) and save only the output and its log-sum-exp.
    nn.MultiheadAttention and open_clip reach the function through ``torch.nn.functional``, so it
    is swapped there for the measurement's duration.
    """
    functional = torch.nn.functional
    original = functional.scaled_dot_product_attention

    def attention(
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> torch.Tensor:
        if query.device.type != "meta" or query.dim() != 4 or enable_gqa:
            return original(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)
        bias = None
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                bias = torch.zeros(attn_mask.shape, dtype=query.dtype, device=query.device).masked_fill(~attn_mask, float("-inf"))
            else:
                bias = attn_mask.to(query.dtype)
            bias = bias.expand(query.shape[0], query.shape[1], query.shape[2], key.shape[2])
        backward = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
        return torch.ops.aten._scaled_dot_product_efficient_attention(query, key, value, bias, backward, dropout_p, is_causal, scale=scale)[
            0
        ]

    functional.scaled_dot_product_attention = attention
    try:
        yield
    finally:
        functional.scaled_dot_product_attention = original


class StorageTally:
    """Bytes of distinct tensor storages (views and shared storages count once)."""

    def __init__(self) -> None:
        self._storages: dict[int, tuple[Any, int]] = {}

    def add(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        # the storage object is kept so that its id stays unique while it is tallied
        self._storages.setdefault(id(storage), (storage, storage.nbytes()))

    def __contains__(self, tensor: torch.Tensor) -> bool:
        return id(tensor.untyped_storage()) in self._storages

    @property
    def nbytes(self) -> int:
        return sum(size for _, size in self._storages.values())


def held_tensors(root: Any) -> Iterator[torch.Tensor]:
    """Every tensor reachable from an object through attributes, containers and modules."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None or isinstance(item, str | bytes | int | float | bool | type):
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, nn.Module):
            stack.extend(item.parameters())
            stack.extend(item.buffers())
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, FunctionType | MethodType | ModuleType):
            # an object with __call__ (a regulariser's penalty) holds tensors like any other; functions do not
            stack.extend(vars(item).values())
