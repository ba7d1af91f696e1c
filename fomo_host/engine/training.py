"""The one training step, and the loop of steps that every task of the stream and the warm start run.

:class:`TrainingStep` is the only code that trains: the engine's tasks, the base
model's warm start, the budget's measurement and the step benchmark all call it.
The hot loop never synchronises with the host: losses accumulate on the device
and are read once per task (or when the progress display refreshes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..components import (
    ModelBundle,
    OptimizerBuilder,
    OptimizerContext,
    ParamGroup,
    StepOutput,
    TaskData,
    TaskInfo,
    TrainBatch,
    UpdateMethod,
)
from ..errors import FomoError, TrainingDiverged
from ..model_inputs import TokenCache
from ..spec import OptimizerSection
from .loader import DeviceTransfer, LoaderSettings, TaskBatches
from .loss import contrastive_loss, contrastive_sample_loss, gather_features
from .mixture import UPDATE_ONLY, MixedBatches, Pool, Pools
from .runtime import Precision, Runtime

MAX_LOGIT_SCALE = math.log(100.0)
ProgressCallback = Callable[[int, torch.Tensor], None]
"""Called after each step with the step index and its loss, still on the device."""


class TaskOptimizers:
    """Builds each task's optimizer: the method's parameter groups, each split into its matrices (decayed) and its
    1-d tensors (norms, biases, the temperature: not decayed), handed to the spec's optimizer component."""

    def __init__(self, spec: OptimizerSection, builder: OptimizerBuilder, device: torch.device) -> None:
        self.spec, self.builder, self.device = spec, builder, device

    def torch_groups(self, groups: list[ParamGroup]) -> list[dict[str, Any]]:
        """Torch parameter groups (``params``, ``weight_decay``, ``lr_scale``); frozen tensors dropped."""
        split_groups = []
        for group in groups:
            params = [p for p in group.params if p.requires_grad]
            decayed = [p for p in params if p.ndim >= 2]
            not_decayed = [p for p in params if p.ndim < 2]
            weight_decay = self.spec.weight_decay if group.weight_decay is None else group.weight_decay
            if decayed:
                split_groups.append({"params": decayed, "weight_decay": weight_decay, "lr_scale": group.lr_scale})
            if not_decayed:
                split_groups.append({"params": not_decayed, "weight_decay": 0.0, "lr_scale": group.lr_scale})
        return split_groups

    def build(self, groups: list[ParamGroup], names: dict[int, str] | None = None) -> torch.optim.Optimizer:
        """The optimizer over ``groups``; ``names``: id(parameter) -> its name in the model."""
        context = OptimizerContext(lr=self.spec.lr, weight_decay=self.spec.weight_decay, device=self.device, names=names or {})
        return self.builder.build(self.torch_groups(groups), context)

    def train_mode(self, optimizer: torch.optim.Optimizer) -> None:
        self.builder.train_mode(optimizer)

    def eval_mode(self, optimizer: torch.optim.Optimizer) -> None:
        self.builder.eval_mode(optimizer)


class HostAdamW(OptimizerBuilder):
    """The host's own AdamW (fused on CUDA), for what it trains outside a spec's stream: the warm start of the base
    model, whose cached result must not depend on which optimizer plugins are installed."""

    def __init__(self, betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-6) -> None:
        self.betas, self.eps = betas, eps

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            groups, lr=context.lr, betas=self.betas, eps=self.eps, weight_decay=context.weight_decay, fused=context.device.type == "cuda"
        )


def set_learning_rate(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group.get("lr_scale", 1.0) * factor


def forward_loss(model: nn.Module, batch: TrainBatch) -> StepOutput:
    image_features, text_features, logit_scale = model(batch.images, batch.tokens)[:3]
    loss = contrastive_loss(image_features, text_features, logit_scale)
    return StepOutput(image_features, text_features, logit_scale, loss)


def sample_losses(
    model: nn.Module, batch: TrainBatch, autocast: Callable[[], contextlib.AbstractContextManager[Any]], rank: int = 0
) -> Iterator[torch.Tensor]:
    """Each sample's share of the global batch's contrastive loss (:func:`contrastive_sample_loss`), one at a time.

    The batch's features are computed once without gradients (and gathered across processes) as
    the candidates; each sample is then run alone, so its loss is differentiable through its own
    image and caption only and a per-sample gradient costs one single-sample backward pass.
    ``rank`` places this process's samples in the global batch.
    """
    with torch.no_grad(), autocast():
        image_features, text_features = model(batch.images, batch.tokens)[:2]
        image_features, text_features = gather_features(image_features), gather_features(text_features)
    offset = rank * len(batch.images)
    for index in range(len(batch.images)):
        with autocast():
            image_feature, text_feature, logit_scale = model(batch.images[index : index + 1], batch.tokens[index : index + 1])[:3]
            yield contrastive_sample_loss(image_feature, text_feature, logit_scale, image_features, text_features, offset + index)


def clamp_logit_scale(model: nn.Module) -> None:
    scale = getattr(model, "logit_scale", None)
    if isinstance(scale, torch.Tensor):
        with torch.no_grad():
            scale.clamp_(0, MAX_LOGIT_SCALE)


def start_task(model: nn.Module, method: UpdateMethod, info: TaskInfo, optimizers: TaskOptimizers) -> torch.optim.Optimizer:
    """The method picks what this task trains (everything else is frozen) and its parameter groups; the spec's
    optimizer is built over them."""
    named = method.trainable_parameters(model, info)
    if not named:
        raise FomoError(f"method {type(method).__name__} trains no parameter of the model in task {info.index + 1}")
    trainable = {id(p) for _, p in named}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in trainable)
    groups = method.param_groups(named, info)
    grouped = [id(p) for group in groups for p in group.params]
    if len(grouped) != len(set(grouped)) or set(grouped) != trainable:
        names = {id(p): name for name, p in named}
        missing = sorted(names[i] for i in trainable - set(grouped))
        raise FomoError(
            f"method {type(method).__name__}: param_groups must hold every trainable parameter exactly once "
            f"(missing: {missing[:3]}, {len(grouped) - len(set(grouped))} repeated, {len(set(grouped) - trainable)} not trainable)"
        )
    return optimizers.build(groups, {id(p): name for name, p in named})


def finish_task(model: nn.Module, method: UpdateMethod, info: TaskInfo, data: TaskData) -> None:
    """The method's end-of-task work (a Fisher, an importance), in eval mode; then every parameter is frozen again."""
    model.eval()
    method.end_task(model, info, data)
    for parameter in model.parameters():
        parameter.requires_grad_(False)


@dataclass
class StepLosses:
    """What a step returns, detached and still on the device (reading them would synchronise)."""

    contrastive: torch.Tensor
    """The contrastive loss, which results record as the training loss."""
    total: torch.Tensor
    """Contrastive loss plus the method's extra loss: what was back-propagated."""


class TrainingStep:
    """One optimizer step: forward (autocast), the method's extra loss, backward (scaled for fp16), the method's
    after-backward work, gradient clipping, the optimizer step with the scheduled learning rate, the method's
    after-step work and the logit-scale clamp.

    ``forward_model`` is the model as it runs forward (wrapped for several processes); ``model`` is the
    model itself, which the method's hooks see.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        optimizer_spec: OptimizerSection,
        precision: Precision,
        method: UpdateMethod | None = None,
        forward_model: nn.Module | None = None,
    ) -> None:
        self.model, self.optimizer, self.optimizer_spec, self.precision, self.method = model, optimizer, optimizer_spec, precision, method
        self.forward_model = forward_model if forward_model is not None else model
        self.trainable = [p for group in optimizer.param_groups for p in group["params"]]
        self.scaler = precision.grad_scaler()

    def losses(self, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The contrastive loss and the total loss of a batch (forward pass only)."""
        with self.precision.autocast():
            output = forward_loss(self.forward_model, batch)
            extra = self.method.extra_loss(self.model, batch, output) if self.method is not None else None
            loss = output.contrastive_loss
            return loss, loss if extra is None else loss + extra

    def __call__(self, batch: TrainBatch, lr_factor: float) -> StepLosses:
        set_learning_rate(self.optimizer, self.optimizer_spec.lr, lr_factor)
        loss, total = self.losses(batch)
        scaler = self.scaler
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.unscale_(self.optimizer)
        else:
            total.backward()
        if self.method is not None:
            self.method.after_backward(self.model)
        if self.optimizer_spec.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.optimizer_spec.grad_clip)
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.method is not None:
            self.method.after_optimizer_step(self.model)
        clamp_logit_scale(self.model)
        return StepLosses(loss.detach(), total.detach())


CHECK_EVERY_STEPS = 25
"""How often the step loop reads from the device (one synchronisation): whether a loss was not finite, and the
latest loss for the progress display. Also at a task's last step and before every checkpoint."""


@dataclass
class LoopState:
    """Where a task's step loop stands: what a checkpoint inside the task keeps, so a resumed task continues exactly."""

    steps_done: int = 0
    loss_sum: float = 0.0
    """The contrastive losses of the steps done, summed in float32 on the device as the loop sums them."""


@dataclass
class StepLoop:
    """Runs a training step over batches; one instance per task (or per warm start).

    The loop never waits for the device in between its checks (every :data:`CHECK_EVERY_STEPS` steps, at the
    last step, and before a checkpoint): losses are summed on the device, and a step whose total loss is NaN or
    infinite is remembered there. A check that finds one stops the run with :class:`TrainingDiverged`, before
    any checkpoint of the diverged model is written.
    """

    step: TrainingStep
    lr_factor: Callable[[int], float]
    device: torch.device
    where: str = "training"
    """How errors name the loop (``task 3/20``)."""

    def run(
        self,
        batches: Iterator[TrainBatch],
        steps: int,
        on_step: ProgressCallback | None = None,
        state: LoopState | None = None,
        on_check: Callable[[int, float], None] | None = None,
        checkpoint_every: int | None = None,
        on_checkpoint: Callable[[LoopState], None] | None = None,
    ) -> float:
        """Train from ``state`` (default: the first step) to step ``steps``; returns the mean contrastive loss.

        ``on_check(steps done, latest loss)`` runs at each check; ``on_checkpoint(state)`` every
        ``checkpoint_every`` steps before the last, once the steps so far are known to be finite.
        """
        state = state or LoopState()
        self.step.model.train()
        loss_sum = torch.tensor(state.loss_sum, dtype=torch.float32, device=self.device)
        first_nonfinite = torch.full((), -1, dtype=torch.long, device=self.device)
        for index in range(state.steps_done, steps):
            losses = self.step(next(batches), self.lr_factor(index))
            loss_sum += losses.contrastive
            first_nonfinite = torch.where(~torch.isfinite(losses.total) & (first_nonfinite < 0), index, first_nonfinite)
            if on_step is not None:
                on_step(index, losses.contrastive)
            done = index + 1
            checkpoint_due = checkpoint_every is not None and done % checkpoint_every == 0 and done < steps
            if done % CHECK_EVERY_STEPS == 0 or done == steps or checkpoint_due:
                bad, latest = torch.stack([first_nonfinite.double(), losses.contrastive.double()]).tolist()
                if bad >= 0:
                    raise TrainingDiverged(
                        f"{self.where}, step {int(bad) + 1}: the training loss is not finite (NaN or inf); the run stopped, "
                        "its last checkpoint is kept; lower optimizer.lr or check the data"
                    )
                if on_check is not None:
                    on_check(done, latest)
                if checkpoint_due and on_checkpoint is not None:
                    on_checkpoint(LoopState(done, float(loss_sum)))
        return float(loss_sum) / max(steps, 1)


COMPILE_BACKEND = "inductor"
"""torch.compile's backend for ``run.compile``: generated kernels. The tests use ``aot_eager``, which traces and
differentiates the same graphs without generating code (inductor takes minutes to start on a small CPU)."""


def compile_for_training(model: nn.Module, method: UpdateMethod | None) -> None:
    """torch.compile the model's forward in place (its state dict keeps its names; the adapters a method added are
    part of it) and the method's extra loss, where it has one. Compilation happens in the first steps."""
    model.compile(backend=COMPILE_BACKEND)
    if method is not None and type(method).extra_loss is not UpdateMethod.extra_loss:
        method.extra_loss = torch.compile(method.extra_loss, backend=COMPILE_BACKEND)  # type: ignore[method-assign]


@contextlib.contextmanager
def compile_failures(method_name: str) -> Iterator[None]:
    """A failure of torch.compile (of the model or of the method's code) as one line naming the method."""
    try:
        yield
    except Exception as exc:
        from torch._dynamo.exc import TorchDynamoException

        if not isinstance(exc, TorchDynamoException):
            raise
        # a backend's failure is wrapped: its own exception says what went wrong
        inner = getattr(exc, "inner_exception", None)
        failure = inner if isinstance(inner, BaseException) else exc
        cause = next((line.strip() for line in str(failure).splitlines() if line.strip()), "")
        raise FomoError(
            f"run.compile: torch.compile cannot compile method {method_name!r} with this model ({type(failure).__name__}: {cause}); "
            "set run.compile = false"
        ) from exc


def enable_activation_checkpointing(model: nn.Module, model_name: str) -> None:
    """Recompute transformer blocks in the backward pass (open_clip's ``set_grad_checkpointing``)."""
    setter = getattr(model, "set_grad_checkpointing", None)
    if not callable(setter):
        raise FomoError(
            f"run.activation_checkpointing: model {model_name!r} offers no set_grad_checkpointing() (open_clip models do); "
            "set run.activation_checkpointing = false"
        )
    setter(True)


def all_finite(model: nn.Module) -> bool:
    """Whether every parameter is finite (one synchronisation); buffers may hold -inf by design (attention masks)."""
    tensors = [t for t in model.parameters() if t.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


BatchSource = Callable[[int, int], contextlib.AbstractContextManager[Iterator[TrainBatch]]]
"""``source(start, stop)``: batches ``start`` .. ``stop - 1`` of a fixed sequence, open while the context is."""


class TaskDataAccess:
    """The current task's own data, for end-of-task work (a Fisher, an importance estimate).

    Batch n is the same whether the batches are asked for at once or over several calls, and whatever the loader
    prepared ahead: each call resumes the sequence at the first batch not yet handed out."""

    def __init__(self, precision: Precision, source: BatchSource, rank: int = 0) -> None:
        self._precision, self._source, self._rank = precision, source, rank
        self._handed_out = 0

    @classmethod
    def from_pool(
        cls,
        runtime: Runtime,
        bundle: ModelBundle,
        tokens: TokenCache,
        pool: Pool,
        batch_size: int,
        seed: int,
        loader: LoaderSettings | None = None,
    ) -> TaskDataAccess:
        """Batches of ``pool`` alone, drawn in the order ``seed`` fixes, prepared as the loader prepares training batches."""
        transfer = DeviceTransfer(runtime, bundle, tokens)

        def source(start: int, stop: int) -> TaskBatches:
            mixed = MixedBatches(Pools.update_only(pool), batch_size, UPDATE_ONLY, torch.Generator().manual_seed(seed))
            return TaskBatches(mixed, transfer, stop, start_step=start, settings=loader)

        return cls(runtime.mixed_precision, source, runtime.rank)

    def batches(self, count: int) -> Iterator[TrainBatch]:
        start = self._handed_out
        with self._source(start, start + count) as batches:
            for batch in batches:
                self._handed_out += 1
                yield batch

    def loss(self, model: nn.Module, batch: TrainBatch) -> torch.Tensor:
        with self._precision.autocast():
            return forward_loss(model, batch).contrastive_loss

    def sample_losses(self, model: nn.Module, batch: TrainBatch) -> Iterator[torch.Tensor]:
        return sample_losses(model, batch, self._precision.autocast, self._rank)
