"""The adapter methods' Params (imported at registration: neither torch nor peft here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Target = Literal["attn", "c_fc", "c_proj"]


TARGETS_HELP = "layers of each transformer block to adapt: attn (input and output projections), c_fc and c_proj (MLP)"


class AdapterParams(BaseModel):
    """Where the adapters go and what happens to them between tasks."""

    model_config = ConfigDict(extra="forbid")

    targets: list[Target] = Field(default=["attn", "c_fc", "c_proj"], min_length=1, description=TARGETS_HELP)
    rank: int = Field(default=8, ge=1, description="rank of the low-rank update")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="dropout on the input of c_fc / c_proj adapters")
    towers: Literal["image", "text", "both"] = Field(default="both", description="which towers get adapters")
    blocks: list[int] | Literal["all"] = Field(default="all", description="indices of the transformer blocks to adapt, or 'all'")
    merge_at_task_end: bool = Field(
        default=False,
        description="fold the adapter into the base weights after every task and start the next task with a fresh one; "
        "false keeps training the same adapter",
    )

    @field_validator("targets")
    @classmethod
    def _distinct_targets(cls, targets: list[str]) -> list[str]:
        if len(set(targets)) != len(targets):
            raise ValueError("a target is listed twice")
        return targets

    @field_validator("blocks")
    @classmethod
    def _valid_blocks(cls, blocks: list[int] | str) -> list[int] | str:
        if isinstance(blocks, list):
            if not blocks:
                raise ValueError("give at least one block index, or 'all'")
            if any(index < 0 for index in blocks) or len(set(blocks)) != len(blocks):
                raise ValueError("block indices must be distinct and >= 0")
        return blocks

    @model_validator(mode="after")
    def _no_dropout_on_attention(self) -> AdapterParams:
        if self.dropout > 0 and "attn" in self.targets:
            raise ValueError(
                "dropout acts on the input of c_fc / c_proj adapters; attention adapters update the weight itself, "
                "so use dropout = 0 or leave attn out of targets"
            )
        return self


class LoRAParams(AdapterParams):
    alpha: float = Field(default=16.0, gt=0, description="the update is scaled by alpha / rank")


class DoRAParams(LoRAParams):
    """DoRA takes LoRA's settings; the magnitude vector needs none."""


class VeRAParams(AdapterParams):
    targets: list[Target] = Field(default=["c_fc", "c_proj"], min_length=1, description=TARGETS_HELP)
    rank: int = Field(default=256, ge=1, description="rank of the shared random projections")
    d_initial: float = Field(default=0.1, gt=0, description="initial value of the scaling vector d")
    projection_seed: int = Field(default=0, ge=0, description="seed of the shared frozen random projections")

    @field_validator("targets")
    @classmethod
    def _linear_only(cls, targets: list[str]) -> list[str]:
        if "attn" in targets:
            raise ValueError("VeRA adapts nn.Linear layers only (peft's VeRA has no attention layer); use c_fc and/or c_proj")
        return targets
