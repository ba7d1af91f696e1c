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
        self._term_of: dict[int, int] = {}
        self._anchor_of: dict[str, torch.Tensor] = {}

    def anchor(self, named: list[tuple[str, nn.Parameter]], copies: dict[str, torch.Tensor] | None = None) -> None:
        """Start a task: anchor every weighted parameter at its current value.

        ``copies`` may hold copies of the parameters' current values (a method that keeps them
        anyway), which then serve as the anchors instead of new clones.
        """
        self._terms, self._term_of, self._anchor_of = [], {}, {}
        for name, parameter in named:
            if name in self.importance:
                weight = self.importance[name] = self.importance[name].to(parameter.device)
                self._term_of[id(parameter)] = len(self._terms)
                anchor = copies[name] if copies is not None else parameter.detach().clone()
                self._terms.append((parameter, weight, anchor))
                self._anchor_of[name] = anchor

    def anchors(self) -> dict[str, torch.Tensor]:
        """The current task's anchors by parameter name (none between tasks): a checkpoint inside a task keeps them."""
        return dict(self._anchor_of)

    @torch.no_grad()
    def restore_anchors(self, saved: dict[str, torch.Tensor]) -> None:
        """Put back anchors saved inside a task, once the task's setup has anchored the penalty again."""
        for name, anchor in self._anchor_of.items():
            if name in saved:
                anchor.copy_(saved[name])

    def __call__(self) -> torch.Tensor | None:
        if not self._terms:
            return None
        return torch.stack([(weight * (parameter - anchor).square()).sum() for parameter, weight, anchor in self._terms]).sum()

    @torch.no_grad()
    def gradient(self, parameter: nn.Parameter) -> torch.Tensor | None:
        """The penalty's gradient at one parameter, ``2 weight (theta - anchor)``; None where the parameter has no weight."""
        index = self._term_of.get(id(parameter))
        if index is None:
            return None
        _, weight, anchor = self._terms[index]
        return 2 * weight * (parameter - anchor)

    def release(self) -> None:
        """Drop the anchors at the end of a task."""
        self._terms, self._term_of, self._anchor_of = [], {}, {}


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


def sum_over_processes(tensors: list[torch.Tensor], count: int) -> int:
    """Sum ``tensors`` in place and ``count`` over processes (identity with one); returns the total count."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return count
    for tensor in tensors:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    total = torch.tensor([count], dtype=torch.float64, device=tensors[0].device if tensors else None)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return int(total.item())
