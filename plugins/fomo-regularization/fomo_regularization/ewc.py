"""Elastic weight consolidation, online form."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fomo_host.api import StepOutput, TaskData, TaskInfo, TrainBatch, UpdateMethod

from .params import EWCParams
from .penalty import QuadraticPenalty, average_gradients, sum_over_processes


def empirical_fisher(model: nn.Module, data: TaskData, batches: int) -> dict[str, torch.Tensor]:
    """The empirical Fisher's diagonal: the mean over samples of the squared gradient of each sample's loss.

    A sample's loss is its share of the contrastive loss (its image's row and its caption's
    column of the batch's logit matrix, :meth:`TaskData.sample_losses`), differentiated through
    its own image and caption. Every process takes its own samples; sums and counts are added up
    across processes.
    """
    named = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    parameters = [parameter for _, parameter in named]
    fisher = [torch.zeros_like(parameter) for parameter in parameters]
    count = 0
    for batch in data.batches(batches):
        for loss in data.sample_losses(model, batch):
            gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
            for total, gradient in zip(fisher, gradients, strict=True):
                if gradient is not None:
                    total.addcmul_(gradient, gradient)
            count += 1
    count = sum_over_processes(fisher, count)
    return {name: total.div_(count) for (name, _), total in zip(named, fisher, strict=True)}


def batch_fisher(model: nn.Module, data: TaskData, batches: int) -> dict[str, torch.Tensor]:
    """The mean over batches of the squared gradient of the batch's loss (each process holds the global batch's gradient)."""
    named = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    parameters = [parameter for _, parameter in named]
    fisher = {name: torch.zeros_like(parameter) for name, parameter in named}
    for batch in data.batches(batches):
        for parameter in parameters:
            parameter.grad = None
        data.loss(model, batch).backward()
        average_gradients(parameters)
        for name, parameter in named:
            if parameter.grad is not None:
                fisher[name].addcmul_(parameter.grad, parameter.grad, value=1.0 / batches)
    for parameter in parameters:
        parameter.grad = None
    return fisher


class EWC(UpdateMethod):
    """Online EWC (Kirkpatrick et al. 2017; Schwarz et al. 2018): full fine-tuning plus a quadratic penalty weighted by the Fisher.

    After each task the Fisher's diagonal is estimated on that task's data: by default the
    empirical Fisher (mean of per-sample squared gradients, :func:`empirical_fisher`), or the
    mean squared batch gradient (``fisher = "batch"``). The accumulated Fisher becomes
    gamma * F_old + F_task.
    """

    def __init__(self, params: EWCParams) -> None:
        self.params = params
        self.penalty = QuadraticPenalty()

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        named = list(model.named_parameters())
        self.penalty.anchor(named)
        return named

    def extra_loss(self, model: nn.Module, batch: TrainBatch, output: StepOutput) -> torch.Tensor | None:
        total = self.penalty()
        return None if total is None else 0.5 * self.params.strength * total

    def end_task(self, model: nn.Module, task: TaskInfo, data: TaskData) -> None:
        self.penalty.release()
        estimate = empirical_fisher if self.params.fisher == "per-sample" else batch_fisher
        fisher = estimate(model, data, self.params.fisher_batches)
        accumulated = self.penalty.importance
        for name, value in fisher.items():
            accumulated[name] = value if name not in accumulated else accumulated[name].to(value.device).mul_(self.params.gamma).add_(value)

    def state_dict(self) -> dict[str, Any]:
        # inside a task (a checkpoint every N steps) the anchors are the weights the task started from
        return {"fisher": dict(self.penalty.importance), "anchors": self.penalty.anchors()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.penalty.importance = dict(state["fisher"])
        self.penalty.restore_anchors(state.get("anchors", {}))
