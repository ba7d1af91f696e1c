"""Synaptic Intelligence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from fomo_host.api import StepOutput, TaskData, TaskInfo, TrainBatch, UpdateMethod

from .penalty import QuadraticPenalty


class SIParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    c: float = Field(default=1.0, ge=0, description="weight of the penalty c * sum Omega (theta - theta*)^2")
    xi: float = Field(default=1e-3, gt=0, description="damping of the importance: omega / (delta^2 + xi)")


class SI(UpdateMethod):
    """Synaptic Intelligence (Zenke et al. 2017): full fine-tuning plus a quadratic penalty weighted by path-integral importance.

    During a task each parameter accumulates omega = -sum_steps g * (change in
    the step), with g the gradient the optimizer stepped on. At the task's end
    Omega += max(0, omega / ((theta_end - theta_start)^2 + xi)); a negative
    value would reward drifting away, so it counts as zero.
    """

    def __init__(self, params: SIParams) -> None:
        self.params = params
        self.penalty = QuadraticPenalty()
        self._named: list[tuple[str, nn.Parameter]] = []
        self._start: dict[str, torch.Tensor] = {}
        self._before_step: dict[str, torch.Tensor] = {}
        self._path_integral: dict[str, torch.Tensor] = {}

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        self._named = list(model.named_parameters())
        self.penalty.anchor(self._named)
        self._start = {name: parameter.detach().clone() for name, parameter in self._named}
        self._before_step = {name: torch.empty_like(parameter) for name, parameter in self._named}
        self._path_integral = {name: torch.zeros_like(parameter) for name, parameter in self._named}
        return self._named

    def build_optimizer(
        self, parameters: list[tuple[str, nn.Parameter]], default: Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
    ) -> torch.optim.Optimizer:
        optimizer = super().build_optimizer(parameters, default)
        # the engine clears gradients before after_optimizer_step, so the path integral is taken
        # around the optimizer's step itself, where the gradient it steps on is still there
        optimizer.register_step_pre_hook(lambda *_: self._remember_weights())
        optimizer.register_step_post_hook(lambda *_: self._integrate())
        return optimizer

    @torch.no_grad()
    def _remember_weights(self) -> None:
        for name, parameter in self._named:
            self._before_step[name].copy_(parameter)

    @torch.no_grad()
    def _integrate(self) -> None:
        for name, parameter in self._named:
            if parameter.grad is not None:
                self._path_integral[name].addcmul_(parameter.grad, parameter.detach() - self._before_step[name], value=-1.0)

    def extra_loss(self, model: nn.Module, batch: TrainBatch, output: StepOutput) -> torch.Tensor | None:
        total = self.penalty()
        return None if total is None else self.params.c * total

    @torch.no_grad()
    def end_task(self, model: nn.Module, task: TaskInfo, data: TaskData) -> None:
        self.penalty.release()
        importance = self.penalty.importance
        for name, parameter in self._named:
            change = parameter.detach() - self._start[name]
            omega = (self._path_integral[name] / (change.square() + self.params.xi)).clamp_(min=0)
            importance[name] = omega if name not in importance else importance[name].to(omega.device).add_(omega)
        self._named, self._start, self._before_step, self._path_integral = [], {}, {}, {}

    def state_dict(self) -> dict[str, Any]:
        return {"omega": dict(self.penalty.importance)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.penalty.importance = dict(state["omega"])
