"""The tuning methods' Params (imported at registration: no torch here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LockedTowerParams(BaseModel):
    """Locked-tower settings; the temperature trains by default, as in LiT."""

    model_config = ConfigDict(extra="forbid")

    train_logit_scale: bool = Field(default=True, description="also train the contrastive temperature (logit_scale)")


class SubsetParams(LockedTowerParams):
    """BitFit / LNFit settings; by default only the named subset trains, the temperature stays fixed."""

    train_logit_scale: bool = Field(default=False, description="also train the contrastive temperature (logit_scale)")
