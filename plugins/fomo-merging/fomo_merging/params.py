"""The Params of the merge schedules and of the merge operators (imported at registration: no torch here).

A schedule's ``operator`` is a merge operator component, chosen by name with its own
params (``operator = { name = "ties", params = { density = 0.2 } }``, or just
``operator = "ties"``); any installed plugin may add operators. What a schedule asks of
its operator (per-model weights, a number of models, theta_0 as a model) is checked
against the operator's traits (:class:`fomo_host.api.MergeOperatorParams`) when the
spec is validated.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fomo_host.api import MergeOperatorChoice, MergeOperatorParams

Initialisation = Literal["base", "latest", "running", "all"]
Deployment = Literal["latest", "running", "all"]


# ----------------------------------------------------------------------------- operators


class InterpolationParams(MergeOperatorParams):
    """Weighted mean of the models; the schedule's ``weight`` sets the weights."""

    takes_weights = True


class SlerpParams(MergeOperatorParams):
    """Spherical interpolation of two task vectors; the schedule's ``weight`` sets the weights."""

    takes_weights = True
    max_models = 2


class ScaledParams(MergeOperatorParams):
    scaling: float = Field(default=1.0, alias="lambda", description="lambda: scale of the merged task vector")


class TaskArithmeticParams(ScaledParams):
    """theta_0 + lambda sum_i tau_i."""


class TiesParams(ScaledParams):
    density: float = Field(default=0.2, gt=0, le=1, description="share of each task vector kept (its int(density * n) largest |tau|)")
    trim: Literal["per-tensor", "global"] = Field(
        default="per-tensor", description="keep the top entries of each tensor (peft, mergekit) or of the whole task vector"
    )


class DareParams(ScaledParams):
    drop: float = Field(default=0.5, ge=0, lt=1, description="probability p of dropping an entry (survivors x 1/(1-p))")
    seed: int = Field(default=0, ge=0, description="seed of the drop masks")
    combine: Literal["linear", "ties"] = Field(default="linear", description="sum the task vectors or TIES-merge them")


class BreadcrumbsParams(ScaledParams):
    drop_largest: float = Field(default=0.01, ge=0, lt=1, description="share of largest |tau| per tensor dropped")
    drop_smallest: float = Field(default=0.85, ge=0, lt=1, description="share of smallest |tau| per tensor dropped")
    combine: Literal["linear", "ties"] = Field(default="linear", description="sum the task vectors or TIES-merge them")

    @model_validator(mode="after")
    def _keeps_something(self) -> BreadcrumbsParams:
        if self.drop_largest + self.drop_smallest >= 1:
            raise ValueError(f"drop_largest + drop_smallest = {self.drop_largest + self.drop_smallest:g} drops everything")
        return self


class MagMaxParams(ScaledParams):
    """Per entry the task-vector value of largest magnitude, scaled by lambda."""


class ModelStockParams(MergeOperatorParams):
    """Model Stock takes no settings: its ratio comes from the angles between the task vectors."""

    base_as_model = False


# ----------------------------------------------------------------------------- schedules


class LinesParams(BaseModel):
    """LiNeS depth scaling of the merged task vector: alpha + beta * layer/(L-1)."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(description="factor of the shallowest block (and of every parameter outside the blocks)")
    beta: float = Field(description="added factor at the deepest block")


class ScheduleParams(BaseModel):
    """A merge schedule's operator, and LiNeS on top of it."""

    model_config = ConfigDict(extra="forbid")

    operator: MergeOperatorChoice = Field(
        default="interpolation",
        validate_default=True,
        description="the merge operator: its name, or { name = ..., params = { ... } } (see fomo-host plugins --kind merge_operator)",
    )
    lines: LinesParams | None = Field(default=None, description="LiNeS depth scaling on top of the operator; none for off")


class WeightedMergeParams(ScheduleParams):
    weight: float = Field(default=0.5, ge=0, le=1, description="w: share of the new fine-tuned model in a two-model interpolation or slerp")

    def _check_weight(self, used: bool, where: str) -> None:
        if "weight" in self.model_fields_set and not used:
            raise ValueError(f"weight does not apply {where}")


class RunningMergeParams(WeightedMergeParams):
    @model_validator(mode="after")
    def _weight_fits(self) -> RunningMergeParams:
        self._check_weight(self.operator.traits.takes_weights, f"to operator {self.operator.name!r} (it takes no per-model weights)")
        return self


class FinetunedMergeParams(RunningMergeParams):
    @model_validator(mode="after")
    def _base_is_a_model(self) -> FinetunedMergeParams:
        if not self.operator.traits.base_as_model:
            raise ValueError(
                f"operator {self.operator.name!r} merges fine-tuned models only (theta_0 has no task vector); "
                "this schedule merges theta_0 with the fine-tuned model"
            )
        return self


def _check_merges_all(operator: MergeOperatorChoice, where: str) -> None:
    most = operator.traits.max_models
    if most is not None:
        raise ValueError(f"operator {operator.name!r} merges at most {most} models; {where} merges every task checkpoint")


class AllMergeParams(ScheduleParams):
    @model_validator(mode="after")
    def _any_number(self) -> AllMergeParams:
        _check_merges_all(self.operator, "this schedule")
        return self


class GeneralMergeParams(WeightedMergeParams):
    init: Initialisation = Field(default="latest", description="weights the next task trains from")
    deploy: Deployment = Field(default="running", description="weights deployed (evaluated) after a task")

    @model_validator(mode="after")
    def _combination_fits(self) -> GeneralMergeParams:
        targets = {self.init, self.deploy}
        if "all" in targets:
            _check_merges_all(self.operator, "'all'")
        self._check_weight(
            "running" in targets and self.operator.traits.takes_weights,
            "here: it weights the running merge of an operator that takes per-model weights (interpolation, slerp)",
        )
        return self
