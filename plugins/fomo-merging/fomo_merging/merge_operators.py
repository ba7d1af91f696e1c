"""The merge operators as components: each binds its Params to a pure function of :mod:`fomo_merging.operators`.

They are registered under ``register_merge_operators`` like any third party's, so a merge
schedule picks them by name; their descriptions and references live in the plugin module.
"""

from __future__ import annotations

from collections.abc import Sequence

from fomo_host.api import MergeOperator, StateDict

from . import operators
from .operators import Models
from .params import (
    BreadcrumbsParams,
    DareParams,
    InterpolationParams,
    MagMaxParams,
    ModelStockParams,
    SlerpParams,
    TaskArithmeticParams,
    TiesParams,
)


class Interpolation(MergeOperator):
    """Interpolation (model soup; WiSE-FT with two models): sum_i w_i theta_i with the schedule's weights."""

    def __init__(self, params: InterpolationParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return operators.interpolate(base, models, weights)


class Slerp(MergeOperator):
    """SLERP: spherical interpolation of two task vectors per tensor (linear when nearly collinear)."""

    def __init__(self, params: SlerpParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return operators.slerp(base, models, weights)


class TaskArithmetic(MergeOperator):
    """Task arithmetic (Ilharco et al., 2023): theta_0 + lambda sum_i tau_i."""

    def __init__(self, params: TaskArithmeticParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return operators.task_arithmetic(base, models, self.params.scaling)


class Ties(MergeOperator):
    """TIES (Yadav et al., 2023): trim each task vector to its largest entries, elect a sign per entry, average the agreeing ones."""

    def __init__(self, params: TiesParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return operators.ties(base, models, self.params.density, self.params.scaling, self.params.trim)


class Dare(MergeOperator):
    """DARE (Yu et al., 2024): drop task-vector entries with probability p, rescale by 1/(1-p), combine linearly or TIES-style."""

    def __init__(self, params: DareParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        p = self.params
        return operators.dare(base, models, p.drop, p.seed, p.combine, p.scaling, model_ids)


class Breadcrumbs(MergeOperator):
    """Model Breadcrumbs (Davari & Belilovsky, 2024): drop the largest and the smallest |tau| per tensor, then combine."""

    def __init__(self, params: BreadcrumbsParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        p = self.params
        return operators.breadcrumbs(base, models, p.drop_largest, p.drop_smallest, p.combine, p.scaling)


class MagMax(MergeOperator):
    """MagMax (Marczak et al., 2024): per entry the task-vector value of largest magnitude; theta_0 + lambda tau."""

    def __init__(self, params: MagMaxParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return operators.magmax(base, models, self.params.scaling)


class ModelStock(MergeOperator):
    """Model Stock (Jang et al., 2024): the mean of the fine-tuned models pulled toward theta_0 by their task vectors' angles."""

    def __init__(self, params: ModelStockParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return operators.model_stock(base, models)
