"""GaLore: full-parameter training with low-rank projected optimizer states."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from fomo_host.api import FomoError, OptimizerRequest, TaskInfo, UpdateMethod

from .params import GaLoreParams

BLOCK_MARKER = ".resblocks."


def projected_matrices(named: list[tuple[str, nn.Parameter]], rank: int) -> list[tuple[str, nn.Parameter]]:
    """The 2-d weights of the towers' transformer blocks (attention and MLP) whose sides both exceed the rank."""
    return [(name, p) for name, p in named if BLOCK_MARKER in f".{name}" and p.ndim == 2 and min(p.shape) > rank]


class GaLore(UpdateMethod):
    """GaLore (Zhao et al. 2024): every parameter trains; the Adam states of the block matrices live in a low-rank gradient subspace.

    The attention and MLP matrices of every transformer block get galore-torch's
    projected AdamW (GaLoreAdamW, or GaLoreAdamW8bit with ``optimizer.name =
    "adamw8bit"``); embeddings, projections, norms, biases and the temperature
    get the same optimizer without projection. A matrix whose smaller side is
    not above the rank gains nothing from a projection and is not projected.
    """

    def __init__(self, params: GaLoreParams) -> None:
        self.params = params

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        named = list(model.named_parameters())
        if not projected_matrices(named, self.params.rank):
            smallest = max((min(p.shape) for name, p in named if BLOCK_MARKER in f".{name}" and p.ndim == 2), default=0)
            raise FomoError(
                f"galore: no transformer-block matrix has both sides larger than rank {self.params.rank} "
                f"(the largest smaller side is {smallest}); lower method.params.rank"
            )
        return named

    def build_optimizer(self, request: OptimizerRequest) -> torch.optim.Optimizer:
        settings, parameters = request.settings, request.parameters
        projected = projected_matrices(parameters, self.params.rank)
        projected_ids = {id(p) for _, p in projected}
        projection = {
            "rank": self.params.rank,
            "update_proj_gap": self.params.update_proj_gap,
            "scale": self.params.scale,
            "proj_type": self.params.proj_type,
        }
        groups = request.param_groups(
            [{"params": [p for _, p in projected], **projection}, {"params": [p for _, p in parameters if id(p) not in projected_ids]}]
        )
        options = settings.options()
        if settings.name == "adamw8bit":
            if request.device.type != "cuda":
                raise FomoError(
                    f"galore with optimizer.name = 'adamw8bit' needs a CUDA device (galore-torch's 8-bit optimizer "
                    f"synchronises CUDA); this run is on {request.device.type}: use optimizer.name = 'adamw'"
                )
            from galore_torch import GaLoreAdamW8bit

            return GaLoreAdamW8bit(groups, **options)
        from galore_torch import GaLoreAdamW

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return GaLoreAdamW(groups, **options, no_deprecation_warning=True)
