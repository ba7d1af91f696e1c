"""The merge operator a schedule uses, chosen and configured in the merger's params.

``operator`` picks one of :mod:`fomo_merging.operators`; the other keys configure
it, and a key that the chosen operator does not use is rejected (never ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from .operators import Models, StateDict

OperatorName = Literal["interpolation", "slerp", "task-arithmetic", "ties", "dare", "breadcrumbs", "magmax", "model-stock"]

OPERATOR_KEYS: dict[str, frozenset[str]] = {
    "interpolation": frozenset(),
    "slerp": frozenset(),
    "task-arithmetic": frozenset({"scaling"}),
    "ties": frozenset({"density", "trim", "scaling"}),
    "dare": frozenset({"drop", "seed", "combine", "scaling"}),
    "breadcrumbs": frozenset({"drop_largest", "drop_smallest", "combine", "scaling"}),
    "magmax": frozenset({"scaling"}),
    "model-stock": frozenset(),
}
"""The operator-specific keys each operator uses (``lines`` applies to all)."""

WEIGHTED_OPERATORS = frozenset({"interpolation", "slerp"})
"""Operators that take per-model weights (a schedule's ``weight``)."""

TWO_MODEL_OPERATORS = frozenset({"slerp"})
"""Operators defined for exactly two models."""

_SPELLING = {"scaling": "lambda"}


class LinesParams(BaseModel):
    """LiNeS depth scaling of the merged task vector: alpha + beta * layer/(L-1)."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(description="factor of the shallowest block (and of every parameter outside the blocks)")
    beta: float = Field(description="added factor at the deepest block")


class OperatorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    operator: OperatorName = Field(default="interpolation", description="the merge operator")
    scaling: float = Field(default=1.0, alias="lambda", description="lambda: scale of the merged task vector")
    density: float = Field(default=0.2, gt=0, le=1, description="ties: share of each task vector kept (its int(density * n) largest |tau|)")
    trim: Literal["per-tensor", "global"] = Field(
        default="per-tensor", description="ties: keep the top entries of each tensor (peft, mergekit) or of the whole task vector"
    )
    drop: float = Field(default=0.5, ge=0, lt=1, description="dare: probability p of dropping an entry (survivors x 1/(1-p))")
    seed: int = Field(default=0, ge=0, description="dare: seed of the drop masks")
    combine: Literal["linear", "ties"] = Field(default="linear", description="dare, breadcrumbs: sum the task vectors or TIES-merge them")
    drop_largest: float = Field(default=0.01, ge=0, lt=1, description="breadcrumbs: share of largest |tau| per tensor dropped")
    drop_smallest: float = Field(default=0.85, ge=0, lt=1, description="breadcrumbs: share of smallest |tau| per tensor dropped")
    lines: LinesParams | None = Field(default=None, description="LiNeS depth scaling on top of the operator; none for off")

    @model_validator(mode="after")
    def _keys_fit_the_operator(self) -> OperatorParams:
        operator_keys = frozenset().union(*OPERATOR_KEYS.values())
        unused = sorted((self.model_fields_set & operator_keys) - OPERATOR_KEYS[self.operator])
        if unused:
            takes = ", ".join(_SPELLING.get(k, k) for k in sorted(OPERATOR_KEYS[self.operator])) or "none of them"
            names = ", ".join(_SPELLING.get(k, k) for k in unused)
            raise ValueError(f"{names} does not apply to operator {self.operator!r} (it takes: {takes}, lines)")
        if self.operator == "breadcrumbs" and self.drop_largest + self.drop_smallest >= 1:
            raise ValueError(f"breadcrumbs: drop_largest + drop_smallest = {self.drop_largest + self.drop_smallest:g} drops everything")
        return self


MergeFunction: TypeAlias = "Callable[[StateDict, Models, Sequence[float] | None, Sequence[int] | None], StateDict]"
"""merge(base, models, weights, model_ids) -> merged weights."""


def build_operator(params: OperatorParams) -> MergeFunction:
    """The configured operator as one function; ``weights`` reach only the weighted operators, ``model_ids`` only DARE."""
    import torch  # here, not at the top: the schedules' Params import this module when the plugin registers

    from . import operators

    def merge(base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int] | None) -> StateDict:
        with torch.no_grad():
            merged = _apply(params, base, models, weights, model_ids)
            if params.lines is not None:
                merged = operators.lines(base, merged, params.lines.alpha, params.lines.beta)
        return merged

    return merge


def _apply(
    params: OperatorParams, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int] | None
) -> StateDict:
    from . import operators

    name = params.operator
    if name == "interpolation":
        return operators.interpolate(base, models, weights)
    if name == "slerp":
        return operators.slerp(base, models, weights)
    if name == "task-arithmetic":
        return operators.task_arithmetic(base, models, params.scaling)
    if name == "ties":
        return operators.ties(base, models, params.density, params.scaling, params.trim)
    if name == "dare":
        return operators.dare(base, models, params.drop, params.seed, params.combine, params.scaling, model_ids)
    if name == "breadcrumbs":
        return operators.breadcrumbs(base, models, params.drop_largest, params.drop_smallest, params.combine, params.scaling)
    if name == "magmax":
        return operators.magmax(base, models, params.scaling)
    if name == "model-stock":
        return operators.model_stock(base, models)
    raise AssertionError(f"unhandled operator {name!r}")
