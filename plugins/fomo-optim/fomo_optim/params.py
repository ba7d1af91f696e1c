"""GaLore's Params (imported at registration: neither torch nor galore-torch here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GaLoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(default=128, ge=1, description="rank of the gradient projection")
    update_proj_gap: int = Field(default=200, ge=1, description="optimizer steps between recomputations of the projection (SVD)")
    scale: float = Field(default=0.25, gt=0, description="scale of the projected-back update")
    proj_type: Literal["std", "reverse_std", "left", "right", "full"] = Field(
        default="std", description="which side of each matrix is projected (galore-torch's proj_type)"
    )
