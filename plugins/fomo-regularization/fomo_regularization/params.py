"""The regularisation methods' Params (imported at registration: no torch here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DistillationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight: float = Field(default=1.0, gt=0, description="weight of the distillation term added to the contrastive loss")
    target: Literal["features", "logits"] = Field(
        default="features",
        description="features: 1 - cosine between the student's and the teacher's image and text features; "
        "logits: KL divergence between their image-text similarity distributions, both directions",
    )


class EWCParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strength: float = Field(default=1.0, ge=0, alias="lambda", description="weight of the penalty lambda/2 * sum F (theta - theta*)^2")
    gamma: float = Field(default=1.0, ge=0, le=1, description="decay of the accumulated Fisher before each task's is added (online EWC)")
    fisher_batches: int = Field(default=8, ge=1, description="batches of the task's data the Fisher is estimated on")
    fisher: Literal["per-sample", "batch"] = Field(
        default="per-sample",
        description="per-sample: the empirical Fisher, the mean over samples of each sample's squared gradient; "
        "batch: the mean over batches of the squared batch-mean gradient (smaller by about the batch size, so lambda is not comparable)",
    )


class SIParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    c: float = Field(default=1.0, ge=0, description="weight of the penalty c * sum Omega (theta - theta*)^2")
    xi: float = Field(default=1e-3, gt=0, description="damping of the importance: omega / (delta^2 + xi)")
