"""The quadratic penalty shared by EWC and SI, and gradient averaging across processes."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class QuadraticPenalty:
    """``sum_i weight_i * (theta_i - anchor_i)^2`` over the parameters that have a weight.

    The anchor is the model as the task starts (after any merge), so the
    penalty holds training near the weights it continues from. Importance and
    anchors sit on the parameters' device.
    """

    def __init__(self) -> None:
        self.importance: dict[str, torch.Tensor] = {}
        self._terms: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []

    def anchor(self, named: list[tuple[str, nn.Parameter]]) -> None:
        """Start a task: anchor every weighted parameter at its current value."""
        self._terms = []
        for name, parameter in named:
            if name in self.importance:
                weight = self.importance[name] = self.importance[name].to(parameter.device)
                self._terms.append((parameter, weight, parameter.detach().clone()))

    def __call__(self) -> torch.Tensor | None:
        if not self._terms:
            return None
        return torch.stack([(weight * (parameter - anchor).square()).sum() for parameter, weight, anchor in self._terms]).sum()

    def release(self) -> None:
        """Drop the anchors at the end of a task."""
        self._terms = []


def average_gradients(parameters: list[nn.Parameter]) -> None:
    """Average ``.grad`` over processes (identity with one); every process then holds the global batch's gradient.

    A process's loss is the whole global batch's (features are gathered), and
    the gather's backward sums over processes: averaging gives the gradient a
    single process would compute, exactly as DDP's averaging does in training.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)  # gloo has no AVG
        parameter.grad.div_(world)
