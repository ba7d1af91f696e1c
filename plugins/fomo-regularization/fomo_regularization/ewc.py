"""Elastic weight consolidation, online form."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from fomo_host.api import StepOutput, TaskData, TaskInfo, TrainBatch, UpdateMethod

from .penalty import QuadraticPenalty, average_gradients


class EWCParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strength: float = Field(default=1.0, ge=0, alias="lambda", description="weight of the penalty lambda/2 * sum F (theta - theta*)^2")
    gamma: float = Field(default=1.0, ge=0, le=1, description="decay of the accumulated Fisher before each task's is added (online EWC)")
    fisher_batches: int = Field(default=8, ge=1, description="batches of the task's data the Fisher is estimated on")


def fisher_diagonal(model: nn.Module, data: TaskData, batches: int) -> dict[str, torch.Tensor]:
    """The empirical Fisher's diagonal: the mean over batches of the squared gradient of the training loss.

    The contrastive loss is defined per batch (every sample's term depends on the
    others), so the gradient is taken per batch, not per sample.
    """
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

    After each task the Fisher's diagonal is estimated on that task's data with
    the training loss; the accumulated Fisher becomes gamma * F_old + F_task.
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
        fisher = fisher_diagonal(model, data, self.params.fisher_batches)
        accumulated = self.penalty.importance
        for name, value in fisher.items():
            accumulated[name] = value if name not in accumulated else accumulated[name].to(value.device).mul_(self.params.gamma).add_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"fisher": dict(self.penalty.importance)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.penalty.importance = dict(state["fisher"])
