"""Synaptic Intelligence."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fomo_host.api import StepOutput, TaskData, TaskInfo, TrainBatch, UpdateMethod

from .params import SIParams
from .penalty import QuadraticPenalty


class SI(UpdateMethod):
    """Synaptic Intelligence (Zenke et al. 2017): full fine-tuning plus a quadratic penalty weighted by path-integral importance.

    During a task each parameter accumulates omega = -sum_steps g * (change in the step), where g
    is the gradient of the task loss alone (the contrastive loss: not the SI penalty's share, and
    not clipped) and the change is what the optimizer actually did. At the task's end
    Omega = max(0, Omega + omega / ((theta_end - theta_start)^2 + xi)): as in the authors' code
    (ganguli-lab/pathint), the clamp applies to the accumulated importance, so a task with negative
    omega lowers an importance earlier tasks built up instead of counting as zero.
    """

    def __init__(self, params: SIParams) -> None:
        self.params = params
        self.penalty = QuadraticPenalty()
        self._named: list[tuple[str, nn.Parameter]] = []
        self._start: dict[str, torch.Tensor] = {}
        self._before_step: dict[str, torch.Tensor] = {}
        self._task_gradient: dict[str, torch.Tensor] = {}
        self._path_integral: dict[str, torch.Tensor] = {}

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        self._named = list(model.named_parameters())
        self._start = {name: parameter.detach().clone() for name, parameter in self._named}
        self.penalty.anchor(self._named, copies=self._start)  # the task's start is the anchor: one copy serves both
        self._before_step = {name: torch.empty_like(parameter) for name, parameter in self._named}
        self._task_gradient = {name: torch.zeros_like(parameter) for name, parameter in self._named}
        self._path_integral = {name: torch.zeros_like(parameter) for name, parameter in self._named}
        return self._named

    def extra_loss(self, model: nn.Module, batch: TrainBatch, output: StepOutput) -> torch.Tensor | None:
        total = self.penalty()
        return None if total is None else self.params.c * total

    @torch.no_grad()
    def after_backward(self, model: nn.Module) -> None:
        # .grad is the gradient of task loss + c * penalty; the penalty's part is known in closed form,
        # so the task loss's own gradient costs no second backward pass
        for name, parameter in self._named:
            gradient = self._task_gradient[name]
            if parameter.grad is None:
                gradient.zero_()
            else:
                gradient.copy_(parameter.grad)
                penalty_gradient = self.penalty.gradient(parameter)
                if penalty_gradient is not None:
                    gradient.sub_(penalty_gradient, alpha=self.params.c)
                # a step that mixed precision skips for overflow changes nothing: its inf must not become inf * 0
                gradient.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
            self._before_step[name].copy_(parameter)

    @torch.no_grad()
    def after_optimizer_step(self, model: nn.Module) -> None:
        for name, parameter in self._named:
            self._path_integral[name].addcmul_(self._task_gradient[name], parameter - self._before_step[name], value=-1.0)

    @torch.no_grad()
    def end_task(self, model: nn.Module, task: TaskInfo, data: TaskData) -> None:
        self.penalty.release()
        importance = self.penalty.importance
        for name, parameter in self._named:
            change = parameter.detach() - self._start[name]
            omega = self._path_integral[name] / (change.square() + self.params.xi)
            accumulated = omega if name not in importance else importance[name].to(omega.device).add_(omega)
            importance[name] = accumulated.clamp_(min=0)
        self._named, self._start, self._before_step, self._task_gradient, self._path_integral = [], {}, {}, {}, {}

    def state_dict(self) -> dict[str, Any]:
        # inside a task (a checkpoint every N steps): where it started, and the path integral so far
        return {"omega": dict(self.penalty.importance), "start": dict(self._start), "path_integral": dict(self._path_integral)}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.penalty.importance = dict(state["omega"])
        # the engine loads a checkpoint inside a task after the task's setup: the tensors set up there take the saved
        # values in place (the penalty's anchors are the start's tensors)
        for name, saved in state.get("start", {}).items():
            if name in self._start:
                self._start[name].copy_(saved)
        for name, saved in state.get("path_integral", {}).items():
            if name in self._path_integral:
                self._path_integral[name].copy_(saved)
