"""GaLore's optimizer: full-rank training with the Adam states of the transformer blocks' matrices in a low-rank subspace."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from fomo_host.api import FomoError, OptimizerBuilder, OptimizerContext

from .params import GaLoreParams

BLOCK_MARKER = ".resblocks."


def is_projected(name: str, parameter: torch.Tensor, rank: int) -> bool:
    """A 2-d weight of a tower's transformer block (attention, MLP) whose sides both exceed the rank."""
    return BLOCK_MARKER in f".{name}" and parameter.ndim == 2 and min(parameter.shape) > rank


class GaLore(OptimizerBuilder):
    """GaLore (Zhao et al. 2024), galore-torch's projected AdamW: the Adam states of the transformer blocks' matrices
    live in a low-rank subspace of their gradients.

    The subspace is refreshed by an SVD every ``update_proj_gap`` steps. Of the parameters the method trains, the
    attention and MLP matrices of every transformer block are projected; embeddings, projections, norms, biases, the
    temperature and adapters get the same optimizer without projection, as does a block matrix whose smaller side is
    not above the rank (a projection would not shrink it). With every method: ``finetune`` gives the paper's GaLore;
    a method that trains no block matrix above the rank is refused.
    """

    def __init__(self, params: GaLoreParams) -> None:
        self.params = params

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        params = self.params
        projection = {"rank": params.rank, "update_proj_gap": params.update_proj_gap, "scale": params.scale, "proj_type": params.proj_type}
        split: list[dict[str, Any]] = []
        for group in groups:
            options = {key: value for key, value in group.items() if key != "params"}
            projected = [p for p in group["params"] if is_projected(context.name_of(p), p, params.rank)]
            chosen = {id(p) for p in projected}
            plain = [p for p in group["params"] if id(p) not in chosen]
            if projected:
                split.append({**options, "params": projected, **projection})
            if plain:
                split.append({**options, "params": plain})
        if not any("rank" in group for group in split):
            raise FomoError(
                f"optimizer galore: no trained transformer-block matrix has both sides larger than rank {params.rank}; "
                "lower optimizer.params.rank, or train block matrices (method finetune)"
            )
        options = {"lr": context.lr, "betas": params.betas, "eps": params.eps, "weight_decay": context.weight_decay}
        if params.eight_bit:
            if context.device.type != "cuda":
                raise FomoError(
                    f"optimizer galore with eight_bit = true needs a CUDA device (galore-torch's 8-bit optimizer "
                    f"synchronises CUDA); this run is on {context.device.type}: set optimizer.params.eight_bit = false"
                )
            from galore_torch import GaLoreAdamW8bit

            return GaLoreAdamW8bit(split, **options)
        from galore_torch import GaLoreAdamW

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return GaLoreAdamW(split, **options, no_deprecation_warning=True)
