"""The optimizers' Params (imported at registration: neither torch nor any optimizer library here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AdamParams(BaseModel):
    """Adam's moment settings, shared by every optimizer of this plugin."""

    model_config = ConfigDict(extra="forbid")

    betas: tuple[float, float] = Field(default=(0.9, 0.98), description="decay rates of the first and second moment estimates")
    eps: float = Field(default=1e-6, gt=0, description="added to the second moment's square root")

    @model_validator(mode="after")
    def _betas_in_range(self) -> AdamParams:
        if not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {list(self.betas)}")
        return self


class AdamWParams(AdamParams):
    pass


class AdamW8bitParams(AdamParams):
    min_8bit_size: int = Field(default=4096, ge=1, description="tensors with fewer elements keep 32-bit state (bitsandbytes' default)")


class GaLoreParams(AdamParams):
    rank: int = Field(default=128, ge=1, description="rank of the gradient projection")
    update_proj_gap: int = Field(default=200, ge=1, description="optimizer steps between recomputations of the projection (SVD)")
    scale: float = Field(default=0.25, gt=0, description="scale of the projected-back update")
    proj_type: Literal["std", "reverse_std", "left", "right", "full"] = Field(
        default="std", description="which side of each matrix is projected (galore-torch's proj_type)"
    )
    eight_bit: bool = Field(default=False, description="8-bit states (galore-torch's GaLoreAdamW8bit; needs a CUDA device)")


class ScheduleFreeAdamWParams(AdamParams):
    betas: tuple[float, float] = Field(
        default=(0.9, 0.999), description="interpolation between the averaged and the base iterate (beta1), second moment decay (beta2)"
    )
    eps: float = Field(default=1e-8, gt=0, description="added to the second moment's square root")
    warmup_steps: int = Field(
        default=0, ge=0, description="linear warmup of the optimizer's own learning rate, in steps since it was built"
    )
    r: float = Field(default=0.0, ge=0, description="polynomial weighting of the averaged iterates (0: uniform)")
    weight_lr_power: float = Field(
        default=2.0, ge=0, description="how strongly an iterate's weight in the average follows its learning rate"
    )
