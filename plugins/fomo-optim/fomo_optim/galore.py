"""GaLore: full-parameter training with low-rank projected optimizer states."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fomo_host.api import FomoError, OptimizerFactory, TaskInfo, UpdateMethod

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

    def build_optimizer(
        self, parameters: list[tuple[str, nn.Parameter]], default: Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
    ) -> torch.optim.Optimizer:
        if not isinstance(default, OptimizerFactory):
            raise TypeError("galore needs the host's OptimizerFactory to read the optimizer settings")
        spec = default.spec
        projected = projected_matrices(parameters, self.params.rank)
        projected_ids = {id(p) for _, p in projected}
        projection = {
            "rank": self.params.rank,
            "update_proj_gap": self.params.update_proj_gap,
            "scale": self.params.scale,
            "proj_type": self.params.proj_type,
        }
        groups = default.param_groups(
            [{"params": [p for _, p in projected], **projection}, {"params": [p for _, p in parameters if id(p) not in projected_ids]}]
        )
        options = {"lr": spec.lr, "betas": spec.betas, "eps": spec.eps, "weight_decay": spec.weight_decay}
        if spec.name == "adamw8bit":
            if default.device.type != "cuda":
                raise FomoError(
                    f"galore with optimizer.name = 'adamw8bit' needs a CUDA device (galore-torch's 8-bit optimizer "
                    f"synchronises CUDA); this run is on {default.device.type}: use optimizer.name = 'adamw'"
                )
            from galore_torch import GaLoreAdamW8bit

            return GaLoreAdamW8bit(groups, **options)
        from galore_torch import GaLoreAdamW

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return GaLoreAdamW(groups, **options, no_deprecation_warning=True)
