"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from torch import nn

from fomo_host.components import TaskInfo, UpdateMethod
from fomo_host.registry import NoParams


class FineTune(UpdateMethod):
    """Full fine-tuning of both towers and the temperature (the paper's most plastic, most forgetful baseline)."""

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        return list(model.named_parameters())
