"""Distillation from the frozen base model."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fomo_host.api import StepOutput, TaskInfo, TrainBatch, UpdateMethod

from .params import DistillationParams


def feature_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cosine similarity (the features are normalised)."""
    return (1.0 - (student.float() * teacher.float()).sum(dim=-1)).mean()


def logit_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of the softmax over each row, averaged over rows."""
    return F.kl_div(
        F.log_softmax(student_logits.float(), dim=-1), F.log_softmax(teacher_logits.float(), dim=-1), reduction="batchmean", log_target=True
    )


class Distillation(UpdateMethod):
    """Full fine-tuning plus distillation from the frozen base model on each batch (LwF, Li & Hoiem 2017; ZSCL, Zheng et al. 2023).

    The teacher is a frozen copy of the model as the stream starts (theta_0);
    its weights are part of the method's state, so a resumed run distils from
    exactly the same teacher.
    """

    def __init__(self, params: DistillationParams) -> None:
        self.params = params
        self.teacher: nn.Module | None = None

    def prepare(self, model: nn.Module) -> nn.Module:
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        return model

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        return list(model.named_parameters())

    def extra_loss(self, model: nn.Module, batch: TrainBatch, output: StepOutput) -> torch.Tensor | None:
        assert self.teacher is not None, "prepare() was not called"
        with torch.no_grad():
            image_features, text_features, logit_scale = self.teacher(batch.images, batch.tokens)[:3]
        if self.params.target == "features":
            loss = 0.5 * (feature_distance(output.image_features, image_features) + feature_distance(output.text_features, text_features))
        else:
            student = output.logit_scale * output.image_features @ output.text_features.t()
            teacher = logit_scale * image_features @ text_features.t()
            loss = 0.5 * (logit_divergence(student, teacher) + logit_divergence(student.t(), teacher.t()))
        return self.params.weight * loss

    def state_dict(self) -> dict[str, Any]:
        assert self.teacher is not None, "prepare() was not called"
        return {"teacher": self.teacher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.teacher is not None, "prepare() was not called"
        self.teacher.load_state_dict(state["teacher"], strict=True)
