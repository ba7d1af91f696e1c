"""AdamW, bitsandbytes' 8-bit AdamW and schedule-free AdamW as fomo-host optimizers."""

from __future__ import annotations

from typing import Any

import torch

from fomo_host.api import OptimizerBuilder, OptimizerContext

from .params import AdamW8bitParams, AdamWParams, ScheduleFreeAdamWParams


class AdamW(OptimizerBuilder):
    """AdamW (Loshchilov and Hutter 2019), torch's implementation, fused on CUDA: the paper's optimizer."""

    def __init__(self, params: AdamWParams) -> None:
        self.params = params

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            groups,
            lr=context.lr,
            betas=self.params.betas,
            eps=self.params.eps,
            weight_decay=context.weight_decay,
            fused=context.device.type == "cuda",
        )


class AdamW8bit(OptimizerBuilder):
    """bitsandbytes' AdamW8bit (Dettmers et al. 2022): both moments kept in 8 bits, blockwise quantised.

    Tensors smaller than ``min_8bit_size`` elements keep 32-bit moments, as bitsandbytes decides.
    """

    def __init__(self, params: AdamW8bitParams) -> None:
        self.params = params

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(
            groups,
            lr=context.lr,
            betas=self.params.betas,
            eps=self.params.eps,
            weight_decay=context.weight_decay,
            min_8bit_size=self.params.min_8bit_size,
        )


class ScheduleFreeAdamW(OptimizerBuilder):
    """Schedule-free AdamW (Defazio et al. 2024, the schedulefree package): no decay schedule and no horizon;
    evaluated at the averaged iterate.

    Training steps at an interpolation ``y`` between the averaged iterate ``x`` and the base
    iterate ``z``; the model is evaluated, merged and kept at ``x``. The host switches the
    optimizer to its evaluation form after every task's last step (so the method's end-of-task
    work, the merger, evaluation and the checkpoint between tasks see ``x``) and back to its
    training form before the next step. A checkpoint inside a task keeps ``y`` with the
    optimizer's state (which records the form), and a run resumed from it continues in training
    form without switching again, so it ends exactly as the uninterrupted run.
    """

    def __init__(self, params: ScheduleFreeAdamWParams) -> None:
        self.params = params

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        from schedulefree import AdamWScheduleFree

        return AdamWScheduleFree(
            groups,
            lr=context.lr,
            betas=self.params.betas,
            eps=self.params.eps,
            weight_decay=context.weight_decay,
            warmup_steps=self.params.warmup_steps,
            r=self.params.r,
            weight_lr_power=self.params.weight_lr_power,
        )

    def train_mode(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.train()  # type: ignore[attr-defined]  # a no-op where the state is already in training form

    def eval_mode(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.eval()  # type: ignore[attr-defined]
