"""The training step loop, shared by the base model's warm start and every task of the stream.

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

from ..components import ModelBundle, StepOutput, TrainBatch, UpdateMethod
from ..model_inputs import TokenCache
from ..spec import Mixture, OptimizerSection
from .loader import DeviceTransfer, LoaderSettings, TaskBatches
from .loss import contrastive_loss, contrastive_sample_loss, gather_features
from .mixture import MixedBatches, Pool
from .runtime import Runtime

MAX_LOGIT_SCALE = math.log(100.0)
ProgressCallback = Callable[[int, torch.Tensor], None]


class OptimizerFactory:
    """Builds the spec's optimizer over parameter groups: AdamW (fused where the device supports it) or
    bitsandbytes' 8-bit AdamW. Weight decay skips 1-d tensors (norms, biases, the temperature).

    Methods receive it as ``default`` in ``build_optimizer``; one that needs its own optimizer class
    (GaLore) reads ``spec`` and ``device`` and reuses :meth:`param_groups`.
    """

    def __init__(self, spec: OptimizerSection, device: torch.device) -> None:
        self.spec, self.device = spec, device

    def param_groups(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each group split into its matrices (decayed) and its 1-d tensors (not decayed); frozen tensors dropped."""
        split_groups = []
        for group in groups:
            params = [p for p in group["params"] if p.requires_grad]
            decayed = [p for p in params if p.ndim >= 2]
            not_decayed = [p for p in params if p.ndim < 2]
            options = {k: v for k, v in group.items() if k != "params"}
            if decayed:
                split_groups.append({**options, "params": decayed, "weight_decay": options.get("weight_decay", self.spec.weight_decay)})
            if not_decayed:
                split_groups.append({**options, "params": not_decayed, "weight_decay": 0.0})
        return split_groups

    def __call__(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        spec, split_groups = self.spec, self.param_groups(groups)
        options = {"lr": spec.lr, "betas": spec.betas, "eps": spec.eps, "weight_decay": spec.weight_decay}
        if spec.name == "adamw8bit":
            import bitsandbytes

            return bitsandbytes.optim.AdamW8bit(split_groups, **options)
        return torch.optim.AdamW(split_groups, **options, fused=self.device.type == "cuda")


def default_optimizer_factory(spec: OptimizerSection, device: torch.device) -> OptimizerFactory:
    """The spec's optimizer, as :class:`OptimizerFactory` builds it."""
    return OptimizerFactory(spec, device)


def set_learning_rate(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for group in optimizer.param_groups:
        group.setdefault("lr_multiplier", group.get("lr", base_lr) / base_lr if base_lr else 1.0)
        group["lr"] = base_lr * group["lr_multiplier"] * factor


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


@dataclass
class StepLoop:
    """Runs optimizer steps on mixed batches; one instance per task (or per warm start)."""

    runtime: Runtime
    bundle: ModelBundle
    tokens: TokenCache
    model: nn.Module
    optimizer: torch.optim.Optimizer
    optimizer_spec: OptimizerSection
    lr_factor: Callable[[int], float]
    method: UpdateMethod | None = None

    def run(self, batches: Iterator[TrainBatch], steps: int, on_step: ProgressCallback | None = None) -> float:
        """Train for ``steps`` steps on the next batches; returns the mean contrastive loss."""
        trainable = [p for group in self.optimizer.param_groups for p in group["params"]]
        training_model = self.runtime.wrap_for_training(self.model)
        scaler = self.runtime.grad_scaler()
        self.model.train()
        loss_sum = torch.zeros((), device=self.runtime.device)
        for step in range(steps):
            set_learning_rate(self.optimizer, self.optimizer_spec.lr, self.lr_factor(step))
            batch = next(batches)
            with self.runtime.autocast():
                output = forward_loss(training_model, batch)
                loss = output.contrastive_loss
                extra = self.method.extra_loss(self.model, batch, output) if self.method else None
                total = loss if extra is None else loss + extra
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.unscale_(self.optimizer)
            else:
                total.backward()
            if self.method is not None:
                self.method.after_backward(self.model)
            if self.optimizer_spec.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trainable, self.optimizer_spec.grad_clip)
            if scaler is not None:
                scaler.step(self.optimizer)
                scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.method is not None:
                self.method.after_optimizer_step(self.model)
            clamp_logit_scale(self.model)
            loss_sum += loss.detach()
            if on_step is not None:
                on_step(step, loss.detach())
        return float(loss_sum) / max(steps, 1)


class TaskDataAccess:
    """The current task's own data, for end-of-task work (a Fisher, an importance estimate).

    Batch n is the same whether the batches are asked for at once or over several calls, and whatever the loader
    prepared ahead: each call resumes the seeded sequence at the first batch not yet handed out."""

    def __init__(
        self,
        runtime: Runtime,
        bundle: ModelBundle,
        tokens: TokenCache,
        pool: Pool,
        batch_size: int,
        seed: int,
        loader: LoaderSettings | None = None,
    ) -> None:
        self._runtime, self._bundle, self._tokens, self._pool = runtime, bundle, tokens, pool
        self._batch_size, self._seed, self._loader = batch_size, seed, loader
        self._handed_out = 0

    def batches(self, count: int) -> Iterator[TrainBatch]:
        empty = Pool([])
        mixed = MixedBatches(
            {"pretraining": empty, "update": self._pool, "buffer": empty},
            self._batch_size,
            Mixture(pretraining=0, update=1, buffer=0),
            torch.Generator().manual_seed(self._seed),
        )
        transfer = DeviceTransfer(self._runtime, self._bundle, self._tokens)
        start = self._handed_out
        with TaskBatches(mixed, transfer, start + count, start_step=start, settings=self._loader) as batches:
            for batch in batches:
                self._handed_out += 1
                yield batch

    def loss(self, model: nn.Module, batch: TrainBatch) -> torch.Tensor:
        with self._runtime.autocast():
            return forward_loss(model, batch).contrastive_loss

    def sample_losses(self, model: nn.Module, batch: TrainBatch) -> Iterator[torch.Tensor]:
        return sample_losses(model, batch, self._runtime.autocast, self._runtime.rank)
