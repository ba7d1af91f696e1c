"""The metrics' Params (imported at registration: no torch here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ZeroShotAccuracyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: list[int] = Field(default=[1, 5], min_length=1, description="report top-k accuracy for each k; the first is the score")

    @model_validator(mode="after")
    def _positive(self) -> ZeroShotAccuracyParams:
        if any(k < 1 for k in self.top_k):
            raise ValueError(f"top_k values must be >= 1, got {self.top_k}")
        return self


class RetrievalRecallParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: list[int] = Field(default=[1, 5, 10], min_length=1, description="report recall@k for each k")
    primary_k: int = Field(default=5, ge=1, description="the k whose mean recall is the dataset's score")

    @model_validator(mode="after")
    def _primary_listed(self) -> RetrievalRecallParams:
        if self.primary_k not in self.k:
            raise ValueError(f"primary_k {self.primary_k} must be one of k {self.k}")
        if any(value < 1 for value in self.k):
            raise ValueError(f"k values must be >= 1, got {self.k}")
        return self
