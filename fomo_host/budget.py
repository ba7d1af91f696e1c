"""Compute budget in memory-adjusted FLOPs (DESIGN §5): measure a method's training step, derive steps per task.

``MAF(m) = GFLOPs per training step(m) x memory multiplier(m)``, where the multiplier is the
method's peak training memory over full fine-tuning's (same model, batch, precision and
optimizer). With a budget of ``maf_per_task``, a method trains ``budget / MAF(m)`` steps per task.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` over real training
steps of the configured model, method and batch, run on the ``meta`` device: every operation
runs with its true shapes but without computing anything, so a ViT-B-16 step at batch 512
is counted on a CPU (about 25 s on one core). A step is the forward pass, the contrastive loss, the
method's extra loss, the backward pass and the optimizer step (GaLore's projections count);
the method's end-of-task work (an EWC Fisher) is counted once per task and spread over the
task's steps. Attention is counted as the fused kernels a GPU runs it with (FlashAttention,
memory-efficient attention): their backward pass recomputes the score matrix, one more
``Q K^T`` product than the decomposed form a CPU runs. That is how the paper's figure was
counted (ViT-B/16, batch 512: 63,394.76 GFLOPs per full fine-tuning step).

Peak memory is measured in one of two ways (``budget.memory_measure``):

- ``cuda``: ``torch.cuda.max_memory_allocated`` over real steps on the GPU, less what was
  allocated before the model was moved there;
- ``analytic``: on the meta device, the bytes of the distinct tensors a training step holds
  at once: the model's parameters and buffers, the tensors the method keeps (anchors, a
  Fisher, a teacher model), the gradients of the trainable parameters, the optimizer state,
  and the activations saved for the backward pass (``torch.autograd.graph.saved_tensors_hooks``;
  tensors sharing storage with a parameter are not counted twice). Tensors keep the
  parameters' dtype (meta tensors know no autocast), so this measure ignores ``run.precision``.

``auto`` picks ``cuda`` when the run would use a CUDA device, else ``analytic``.

Both measurements follow the engine through two tasks: task 0's setup and end-of-task work
(counted), then the first step of task 1 (counted and measured: a regulariser's anchors and
importance are in place, the optimizer state is created in the step). A one-task stream
measures the step of task 0 before its end-of-task work. Results are cached as JSON under the
cache directory (``budget/``), keyed by model, method, batch, precision, optimizer and measure.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .components import BuildContext, ModelBundle, TaskInfo, TrainBatch, UpdateMethod
from .errors import FomoError, SpecError
from .plugins import PluginHost
from .spec import ComponentRef, RunSpec, format_validation_error

MEASURE_VERSION = 1
"""Part of the cache key: raise it when the measurement changes what it counts."""
REFERENCE_METHOD = "finetune"
"""The method whose peak memory is the multiplier's denominator (full fine-tuning)."""
PROBE_CAPTION = "a photo of a thing"
GIGA = 1e9


class MeasurementError(FomoError):
    """The method's step could not be run for measuring (plugin code that needs real values on the meta device)."""


@dataclass(frozen=True)
class StepCost:
    """What one method costs on one model and batch, as measured."""

    step_gflops: float
    """GFLOPs of one training step."""
    end_task_gflops: float
    """GFLOPs of the method's end-of-task work, once per task."""
    peak_memory_bytes: int
    memory_measure: str
    """``cuda`` or ``analytic``."""


@dataclass(frozen=True)
class Budget:
    """The compute a run spends per task, and how it was derived."""

    given: str
    """Which key of the spec's ``[budget]`` set it: ``steps_per_task``, ``samples_per_task`` or ``maf_per_task``."""
    batch_size: int
    steps_per_task: int
    step_gflops: float
    end_task_gflops: float
    memory_multiplier: float
    memory_measure: str
    peak_memory_bytes: int
    reference_peak_memory_bytes: int

    @property
    def samples_per_task(self) -> int:
        return self.steps_per_task * self.batch_size

    @property
    def gflops_per_step(self) -> float:
        """A step's GFLOPs with the end-of-task work spread over the task."""
        return self.step_gflops + self.end_task_gflops / self.steps_per_task

    @property
    def maf_per_step(self) -> float:
        return self.gflops_per_step * self.memory_multiplier

    @property
    def gflops_per_task(self) -> float:
        return self.gflops_per_step * self.steps_per_task

    @property
    def maf_per_task(self) -> float:
        return self.maf_per_step * self.steps_per_task

    def as_record(self) -> dict[str, Any]:
        """The budget as results.jsonl and summary.json store it."""
        record = asdict(self)
        for name in ("samples_per_task", "gflops_per_step", "maf_per_step", "gflops_per_task", "maf_per_task"):
            record[name] = getattr(self, name)
        return record


def steps_within(maf_per_task: float, cost: StepCost, memory_multiplier: float) -> int:
    """The most steps whose MAF (end-of-task work included) fits the budget: floor((budget / multiplier - end) / step)."""
    available = maf_per_task / memory_multiplier - cost.end_task_gflops
    steps = math.floor(available / cost.step_gflops * (1 + 1e-12))
    if steps < 1:
        needed = (cost.step_gflops + cost.end_task_gflops) * memory_multiplier
        raise SpecError(f"budget.maf_per_task = {maf_per_task:g} is below one step of this method ({needed:,.1f} MAF); raise it")
    return steps


def unmeasured_budget(spec: RunSpec) -> Budget:
    """A budget in steps or samples whose compute could not be measured: the steps stand, the figures are NaN."""
    nan = math.nan
    cost = StepCost(step_gflops=nan, end_task_gflops=nan, peak_memory_bytes=0, memory_measure="none")
    budget = derive_budget(spec, cost, cost)
    return replace(budget, memory_multiplier=nan)


def derive_budget(spec: RunSpec, cost: StepCost, reference: StepCost) -> Budget:
    """Steps per task from the spec's budget, with the measured cost recorded beside them."""
    multiplier = cost.peak_memory_bytes / reference.peak_memory_bytes if reference.peak_memory_bytes else math.nan
    budget, batch_size = spec.budget, spec.run.batch_size
    if budget.steps_per_task is not None:
        given, steps = "steps_per_task", budget.steps_per_task
    elif budget.samples_per_task is not None:
        given, steps = "samples_per_task", max(1, math.ceil(budget.samples_per_task / batch_size))
    else:
        assert budget.maf_per_task is not None
        given, steps = "maf_per_task", steps_within(budget.maf_per_task, cost, multiplier)
    return Budget(
        given=given,
        batch_size=batch_size,
        steps_per_task=steps,
        step_gflops=cost.step_gflops,
        end_task_gflops=cost.end_task_gflops,
        memory_multiplier=multiplier,
        memory_measure=cost.memory_measure,
        peak_memory_bytes=cost.peak_memory_bytes,
        reference_peak_memory_bytes=reference.peak_memory_bytes,
    )


def resolve_budget(
    host: PluginHost, spec: RunSpec, cache_dir: Path, device: torch.device | None = None, method: ComponentRef | None = None
) -> Budget:
    """The budget of ``method`` (default: the spec's) under the spec: measured (or read from the cache), then derived.

    ``device`` is where the run would train; it decides the ``auto`` memory measure.
    """
    return resolve_budgets(host, spec, cache_dir, [method or spec.method], device)[0]


def resolve_budgets(
    host: PluginHost, spec: RunSpec, cache_dir: Path, methods: list[ComponentRef], device: torch.device | None = None
) -> list[Budget]:
    """:func:`resolve_budget` of several methods, measured on one build of the model."""
    reference = ComponentRef(name=REFERENCE_METHOD)
    *costs, reference_cost = measure_step_costs(host, spec, [*methods, reference], memory_measure(spec, device), cache_dir)
    return [derive_budget(spec, cost, reference_cost) for cost in costs]


def memory_measure(spec: RunSpec, device: torch.device | None = None) -> str:
    chosen = spec.budget.memory_measure
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() and not spec.run.cpu else "cpu")
    if chosen == "auto":
        return "cuda" if device.type == "cuda" else "analytic"
    if chosen == "cuda" and device.type != "cuda":
        raise SpecError(f"budget.memory_measure = 'cuda' needs a CUDA device, this run is on {device.type}; use 'analytic' or 'auto'")
    return chosen


# ----------------------------------------------------------------------------- measuring and caching


def cost_key(host: PluginHost, spec: RunSpec, method: ComponentRef, measure: str) -> dict[str, Any]:
    """Everything the measured cost depends on."""
    model = host.registry.get("model", spec.model.name, where="model.name")
    method_component = host.registry.get("method", method.name, where="method.name")
    key: dict[str, Any] = {
        "version": MEASURE_VERSION,
        "torch": torch.__version__,
        "model": {"name": spec.model.name, "params": spec.model.params, "provider": str(model.provider)},
        "method": {"name": method.name, "params": method.params, "provider": str(method_component.provider)},
        "batch_size": spec.run.batch_size,
        "precision": spec.run.precision,
        "optimizer": spec.optimizer.name,
        "two_tasks": spec.data.num_tasks > 1,
        "memory_measure": measure,
    }
    if measure == "cuda":
        key["gpu"] = torch.cuda.get_device_name()
    return key


def measure_step_costs(host: PluginHost, spec: RunSpec, methods: list[ComponentRef], measure: str, cache_dir: Path) -> list[StepCost]:
    """Each method's cost on the spec's model and batch, from the cache or measured now (and cached)."""
    paths, keys = [], {}
    for method in methods:
        key = cost_key(host, spec, method, measure)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
        path = cache_dir / "budget" / f"{method.name}-{digest}.json"
        paths.append(path)
        keys[path] = (method, key)
    costs = {path: StepCost(**json.loads(path.read_text(encoding="utf-8"))["cost"]) for path in keys if path.is_file()}
    missing = [path for path in keys if path not in costs]
    if missing:
        from .engine.runtime import preserved_rng

        with preserved_rng():
            built = build_bundle(host, spec, cache_dir)
            for path in missing:
                method, key = keys[path]
                try:
                    costs[path] = cost = measure_now(host, spec, method, measure, built)
                except FomoError:
                    raise
                except Exception as exc:  # plugin code run on meta tensors: value-dependent code cannot run there
                    cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    raise MeasurementError(f"cannot measure method {method.name!r} on model {spec.model.name!r}: {cause}") from exc
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                temporary.write_text(json.dumps({"key": key, "cost": asdict(cost)}, indent=2, sort_keys=True, default=str) + "\n")
                temporary.replace(path)
    return [costs[path] for path in paths]


def measure_now(host: PluginHost, spec: RunSpec, method: ComponentRef, measure: str, built: ModelBundle) -> StepCost:
    """Count FLOPs (and, for the analytic measure, memory) on the meta device; for ``cuda``, memory on the GPU."""
    cuda_peak = measure_cuda_peak(host, spec, method, built) if measure == "cuda" else None
    bundle = copy.copy(built)
    bundle.model = copy.deepcopy(built.model).to("meta")
    probe = Probe(spec, bundle, torch.device("meta"))
    with fused_attention():
        probe.run(method.name, build_method(host, method), count=True)
    peak = cuda_peak if cuda_peak is not None else probe.analytic_bytes
    return StepCost(probe.step_flops / GIGA, probe.end_task_flops / GIGA, int(peak), measure)


def build_bundle(host: PluginHost, spec: RunSpec, cache_dir: Path) -> ModelBundle:
    """The spec's model as its factory builds it (on the CPU; weights do not matter to the count)."""
    component = host.registry.get("model", spec.model.name, where="model.name")
    try:
        params = component.validate_params(spec.model.params)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, prefix="model.params")) from None
    bundle: ModelBundle = component.factory(params, BuildContext(seed=spec.run.seed, cache_dir=cache_dir))
    return bundle


def build_method(host: PluginHost, method: ComponentRef) -> UpdateMethod:
    component = host.registry.get("method", method.name, where="method.name")
    try:
        params = component.validate_params(method.params)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, prefix="method.params")) from None
    return component.factory(params)


def measure_cuda_peak(host: PluginHost, spec: RunSpec, method: ComponentRef, bundle: ModelBundle) -> int:
    """Peak bytes allocated on the GPU by real training steps, above what was allocated before the model arrived."""
    device = torch.device("cuda", torch.cuda.current_device())
    gc.collect()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    probe_bundle = copy.copy(bundle)
    probe_bundle.model = copy.deepcopy(bundle.model).to(device)
    probe = Probe(spec, probe_bundle, device)
    probe.run(method.name, build_method(host, method), count=False)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del probe, probe_bundle
    gc.collect()
    torch.cuda.empty_cache()
    return peak


# ----------------------------------------------------------------------------- the probe


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


@contextlib.contextmanager
def counting(enabled: bool) -> Iterator[Callable[[], int]]:
    """FLOPs of the enclosed work (0 when not enabled)."""
    if not enabled:
        yield lambda: 0
        return
    counter = FlopCounterMode(display=False)
    with counter:
        yield counter.get_total_flops


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
        elif hasattr(item, "__dict__") and not callable(item):
            stack.extend(vars(item).values())


class ProbeData:
    """The task data a method's end-of-task work sees during the measurement: the probe batch, repeated."""

    def __init__(self, batch: TrainBatch, autocast: Callable[[], contextlib.AbstractContextManager[Any]]) -> None:
        self._batch, self._autocast = batch, autocast

    def batches(self, count: int) -> Iterator[TrainBatch]:
        for _ in range(count):
            yield self._batch

    def loss(self, model: nn.Module, batch: TrainBatch) -> torch.Tensor:
        from .engine.training import forward_loss

        with self._autocast():
            return forward_loss(model, batch).contrastive_loss

    def sample_losses(self, model: nn.Module, batch: TrainBatch) -> Iterator[torch.Tensor]:
        from .engine.training import sample_losses

        return sample_losses(model, batch, self._autocast)


class Probe:
    """A method on a model through the start of a stream, as the engine trains it: one step and the end-of-task work measured."""

    def __init__(self, spec: RunSpec, bundle: ModelBundle, device: torch.device) -> None:
        self.spec, self.bundle, self.device = spec, bundle, device
        self.step_flops = 0
        self.end_task_flops = 0
        self.analytic_bytes = 0

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        precision = self.spec.run.precision
        if self.device.type == "meta" or precision == "no":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)

    def batch(self) -> TrainBatch:
        size, bundle = self.spec.run.batch_size, self.bundle
        tokens = bundle.tokenizer([PROBE_CAPTION]).expand(size, -1).contiguous()
        if self.device.type == "meta":
            images = torch.empty(size, 3, bundle.image_size, bundle.image_size, device="meta")
        else:
            images = torch.randn(size, 3, bundle.image_size, bundle.image_size, device=self.device)
        return TrainBatch(images=images, tokens=tokens.to(self.device))

    def run(self, name: str, method: UpdateMethod, count: bool) -> None:
        """Task 0: its end-of-task work; the last task measured (task 1, or 0 in a one-task stream): its first step."""
        from .engine.training import OptimizerFactory

        num_tasks = self.spec.data.num_tasks
        measured_task = min(1, num_tasks - 1)
        batch = self.batch()
        model = method.prepare(self.bundle.model)
        model.to(self.device)
        factory = OptimizerFactory(self.spec.optimizer, self.device)
        for task in range(measured_task + 1):
            info = TaskInfo(task, num_tasks, steps=1, concepts=[])
            named = method.trainable_parameters(model, info)
            if not named:
                raise FomoError(f"method {name!r} trains no parameter of model {self.spec.model.name!r}")
            trainable = {id(p) for _, p in named}
            for parameter in model.parameters():
                parameter.requires_grad_(id(parameter) in trainable)
            optimizer = method.build_optimizer(named, factory)
            if task == measured_task:
                model.train()
                self.step(model, method, optimizer, batch, measure=count)
            if task == 0:
                model.eval()
                with counting(count) as flops:
                    method.end_task(model, info, ProbeData(batch, self.autocast))
                self.end_task_flops = flops()
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            del optimizer

    def step(self, model: nn.Module, method: UpdateMethod, optimizer: torch.optim.Optimizer, batch: TrainBatch, measure: bool) -> None:
        """One training step as the engine's StepLoop takes it; with ``measure``, its FLOPs counted and its memory tallied."""
        from .engine.training import forward_loss

        trainable = [p for group in optimizer.param_groups for p in group["params"]]
        memory = StorageTally()
        if measure:
            for tensor in (*model.parameters(), *model.buffers(), *held_tensors(vars(method))):
                memory.add(tensor)
        activations = StorageTally()

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            if tensor not in memory:
                activations.add(tensor)
            return tensor

        hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor) if measure else contextlib.nullcontext()
        with counting(measure) as flops:
            with hooks, self.autocast():
                output = forward_loss(model, batch)
                extra = method.extra_loss(model, batch, output)
                total = output.contrastive_loss if extra is None else output.contrastive_loss + extra
            total.backward()
            del output, extra, total
            method.after_backward(model)
            grad_clip = self.spec.optimizer.grad_clip
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
            optimizer.step()
        if measure:
            self.step_flops = flops()
            for parameter in trainable:
                if parameter.grad is not None:
                    memory.add(parameter.grad)
            for tensor in held_tensors(optimizer.state):
                memory.add(tensor)
            self.analytic_bytes = memory.nbytes + activations.nbytes
        optimizer.zero_grad(set_to_none=True)
        method.after_optimizer_step(model)
