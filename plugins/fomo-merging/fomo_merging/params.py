"""The merge schedules' Params (imported at registration: no torch here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .operator_params import TWO_MODEL_OPERATORS, WEIGHTED_OPERATORS, OperatorParams

Initialisation = Literal["base", "latest", "running", "all"]
Deployment = Literal["latest", "running", "all"]


class WeightedMergeParams(OperatorParams):
    weight: float = Field(default=0.5, ge=0, le=1, description="w: share of the new fine-tuned model in a two-model interpolation or slerp")

    def _check_weight(self, used: bool, where: str) -> None:
        if "weight" in self.model_fields_set and not used:
            raise ValueError(f"weight does not apply {where}")


class RunningMergeParams(WeightedMergeParams):
    @model_validator(mode="after")
    def _weight_fits(self) -> RunningMergeParams:
        self._check_weight(self.operator in WEIGHTED_OPERATORS, f"to operator {self.operator!r} (only interpolation and slerp)")
        return self


class FinetunedMergeParams(RunningMergeParams):
    @model_validator(mode="after")
    def _two_finetuned(self) -> FinetunedMergeParams:
        if self.operator == "model-stock":
            raise ValueError("model-stock measures angles between fine-tuned models; this schedule merges one with theta_0")
        return self


class AllMergeParams(OperatorParams):
    @model_validator(mode="after")
    def _any_number(self) -> AllMergeParams:
        if self.operator in TWO_MODEL_OPERATORS:
            raise ValueError(f"operator {self.operator!r} merges two models; this schedule merges every task checkpoint")
        return self


class GeneralMergeParams(WeightedMergeParams):
    init: Initialisation = Field(default="latest", description="weights the next task trains from")
    deploy: Deployment = Field(default="running", description="weights deployed (evaluated) after a task")

    @model_validator(mode="after")
    def _combination_fits(self) -> GeneralMergeParams:
        targets = {self.init, self.deploy}
        if "all" in targets and self.operator in TWO_MODEL_OPERATORS:
            raise ValueError(f"operator {self.operator!r} merges two models; 'all' merges every task checkpoint")
        self._check_weight(
            "running" in targets and self.operator in WEIGHTED_OPERATORS,
            "here: it weights the running merge of interpolation or slerp",
        )
        return self
