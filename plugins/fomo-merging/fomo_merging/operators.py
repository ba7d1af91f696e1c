"""Merge operators: pure functions on state dicts (DESIGN §6), and the components that bind each to its Params.

Every operator takes the base weights theta_0 and a sequence of models (state
dicts with the base's keys, oldest first) and returns a new state dict; nothing
given to it is modified. Task vectors are tau_i = theta_i - theta_0. Only
floating-point tensors are merged; any other tensor (an integer buffer, a step
counter) is copied from the newest model, ``models[-1]``.

``models`` may be a lazy sequence (:class:`fomo_merging.history.LazyModels`) that
loads one checkpoint from disk per access: every operator walks it one model at
a time (TIES and the TIES-style combines walk it twice), so memory holds the base,
one model and a few accumulators of the model's size, however many models are merged.
Arithmetic runs in float32 (float64 stays float64) and results take the base's dtype.

The components at the end are registered under ``register_merge_operators`` like any third party's, so a merge
schedule picks them by name; their descriptions and references live in the plugin module.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence

import torch

from fomo_host.api import MergeOperator, StateDict

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

Models = Sequence[StateDict]

COLLINEAR = 0.9995
"""SLERP interpolates linearly when |cos| between the task vectors exceeds this."""


# ----------------------------------------------------------------------------- helpers


def merged_keys(base: StateDict) -> list[str]:
    """The keys whose tensors are merged: the floating-point ones."""
    return [key for key, tensor in base.items() if tensor.is_floating_point()]


def _work_dtype(tensor: torch.Tensor) -> torch.dtype:
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def task_vector(model: StateDict, base: StateDict, key: str) -> torch.Tensor:
    """tau = theta - theta_0 for one tensor, in the working precision."""
    dtype = _work_dtype(base[key])
    return model[key].to(device=base[key].device, dtype=dtype) - base[key].to(dtype)


def _finish(base: StateDict, newest: StateDict, merged: dict[str, torch.Tensor]) -> StateDict:
    """Cast merged tensors to the base's dtype; copy the unmerged ones from the newest model."""
    result: StateDict = {}
    for key, tensor in base.items():
        if key in merged:
            result[key] = merged[key].to(tensor.dtype)
        else:
            result[key] = newest[key].detach().clone()
    return result


def _add_scaled(base: StateDict, deltas: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    return {key: base[key].to(delta.dtype) + scale * delta for key, delta in deltas.items()}


def _check(models: Models, exactly: int | None = None) -> None:
    if len(models) == 0:
        raise ValueError("a merge needs at least one model")
    if exactly is not None and len(models) != exactly:
        raise ValueError(f"this operator merges exactly {exactly} models, got {len(models)}")


def _check_weights(weights: Sequence[float], count: int) -> None:
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} models")
    if not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise ValueError(f"interpolation weights must sum to 1, got {sum(weights):g}")


# ----------------------------------------------------------------------------- weighted averages


def interpolate(base: StateDict, models: Models, weights: Sequence[float] | None = None) -> StateDict:
    """Weighted mean of the weights, sum_i w_i theta_i (model soup; WiSE-FT is the two-model case).

    ``weights`` default to uniform and must sum to 1 (Wortsman et al., 2022, "Model soups";
    Wortsman et al., 2022, "Robust fine-tuning of zero-shot models").
    """
    _check(models)
    weights = list(weights) if weights is not None else [1 / len(models)] * len(models)
    _check_weights(weights, len(models))
    keys = merged_keys(base)
    total = {key: torch.zeros_like(base[key], dtype=_work_dtype(base[key])) for key in keys}
    newest: StateDict = {}
    for weight, model in zip(weights, models, strict=True):
        for key in keys:
            total[key] += weight * model[key].to(device=total[key].device, dtype=total[key].dtype)
        newest = model
    return _finish(base, newest, total)


def slerp(base: StateDict, models: Models, weights: Sequence[float] | None = None) -> StateDict:
    """Spherical interpolation of two task vectors, per tensor (Shoemake, 1985; used for model merging by mergekit).

    With weights (w_a, w_b), w_a + w_b = 1, and Omega the angle between tau_a and
    tau_b: theta_0 + sin(w_a Omega)/sin(Omega) tau_a + sin(w_b Omega)/sin(Omega) tau_b.
    Falls back to linear interpolation w_a tau_a + w_b tau_b when the task vectors
    are nearly collinear (|cos Omega| > 0.9995) or one of them is zero.
    """
    _check(models, exactly=2)
    weights = list(weights) if weights is not None else [0.5, 0.5]
    _check_weights(weights, 2)
    first, second = models[0], models[1]
    merged = {}
    for key in merged_keys(base):
        a, b = task_vector(first, base, key), task_vector(second, base, key)
        norm_a, norm_b = a.norm(), b.norm()
        cosine = float((a * b).sum() / (norm_a * norm_b)) if norm_a > 0 and norm_b > 0 else 1.0
        if abs(cosine) > COLLINEAR:
            delta = weights[0] * a + weights[1] * b
        else:
            omega = math.acos(max(-1.0, min(1.0, cosine)))
            delta = (math.sin(weights[0] * omega) * a + math.sin(weights[1] * omega) * b) / math.sin(omega)
        merged[key] = base[key].to(delta.dtype) + delta
    return _finish(base, second, merged)


# ----------------------------------------------------------------------------- task-vector sums


def task_arithmetic(base: StateDict, models: Models, scaling: float = 1.0) -> StateDict:
    """theta_0 + lambda sum_i tau_i (Ilharco et al., 2023, "Editing models with task arithmetic")."""
    _check(models)
    return _linear_combine(base, models, scaling, _unchanged)


Sparsifier = Callable[[int, StateDict], Callable[[str, torch.Tensor], torch.Tensor]]
"""(model index, model) -> a function (key, tau) -> that tensor's task vector after dropping entries.

Called once per model per pass, so per-model work (a global threshold) happens
while that model is loaded.
"""


def _unchanged(index: int, model: StateDict) -> Callable[[str, torch.Tensor], torch.Tensor]:
    return lambda key, tau: tau


def _linear_combine(base: StateDict, models: Models, scaling: float, sparsify: Sparsifier) -> StateDict:
    """theta_0 + lambda sum_i sparsify(tau_i), one pass over ``models``."""
    keys = merged_keys(base)
    total = {key: torch.zeros_like(base[key], dtype=_work_dtype(base[key])) for key in keys}
    newest: StateDict = {}
    for index, model in enumerate(models):
        sparse = sparsify(index, model)
        for key in keys:
            total[key] += sparse(key, task_vector(model, base, key))
        newest = model
    return _finish(base, newest, _add_scaled(base, total, scaling))


def _elect_and_merge(base: StateDict, models: Models, scaling: float, sparsify: Sparsifier) -> StateDict:
    """TIES' last two steps on sparsified task vectors: elect a sign per entry, average the agreeing entries.

    Two passes over ``models``: the first sums the sparsified task vectors to elect
    sign(sum_i tau_i) per entry, the second averages the nonzero entries that agree
    with it. An entry whose sum is exactly 0 elects +1, as peft and mergekit do; an
    entry no model kept stays at theta_0.
    """
    keys = merged_keys(base)
    sign_sum = {key: torch.zeros_like(base[key], dtype=_work_dtype(base[key])) for key in keys}
    for index, model in enumerate(models):
        sparse = sparsify(index, model)
        for key in keys:
            sign_sum[key] += sparse(key, task_vector(model, base, key))
    elected = {key: torch.where(total >= 0, 1.0, -1.0).to(total.dtype) for key, total in sign_sum.items()}
    del sign_sum
    agreeing_sum = {key: torch.zeros_like(sign) for key, sign in elected.items()}
    agreeing_count = {key: torch.zeros_like(sign) for key, sign in elected.items()}
    newest: StateDict = {}
    for index, model in enumerate(models):
        sparse = sparsify(index, model)
        for key in keys:
            tau = sparse(key, task_vector(model, base, key))
            agrees = (torch.sign(tau) == elected[key]) & (tau != 0)
            agreeing_sum[key] += torch.where(agrees, tau, torch.zeros_like(tau))
            agreeing_count[key] += agrees
        newest = model
    mean = {key: agreeing_sum[key] / agreeing_count[key].clamp(min=1) for key in keys}
    return _finish(base, newest, _add_scaled(base, mean, scaling))


# ----------------------------------------------------------------------------- TIES


def keep_largest(magnitudes: torch.Tensor, keep: int) -> torch.Tensor:
    """A mask of exactly ``keep`` entries of a flat tensor: the largest, equal values taken in index order."""
    kept = torch.zeros(magnitudes.numel(), dtype=torch.bool, device=magnitudes.device)
    if keep > 0:
        kept[torch.argsort(magnitudes, descending=True, stable=True)[:keep]] = True
    return kept


def global_trim_plan(model: StateDict, base: StateDict, density: float) -> tuple[float, dict[str, int]]:
    """Global trimming of one task vector: the threshold (the k-th largest |tau| over every merged entry,
    k = int(density * entries)) and, per key, how many entries equal to it are kept.

    Entries above the threshold are all kept; of those equal to it, the first ones in key order
    and then index order, so that exactly k entries survive. ``inf`` when k = 0 (nothing kept).
    """
    keys = merged_keys(base)
    magnitudes = torch.cat([task_vector(model, base, key).abs().flatten() for key in keys])
    keep = int(density * magnitudes.numel())
    if keep == 0:
        return math.inf, {}
    threshold = float(torch.kthvalue(magnitudes.cpu(), magnitudes.numel() - keep + 1).values)
    remaining = keep - int((magnitudes > threshold).sum())
    equal_quota: dict[str, int] = {}
    for key in keys:
        equal = int((task_vector(model, base, key).abs() == threshold).sum())
        equal_quota[key] = min(equal, remaining)
        remaining -= equal_quota[key]
    return threshold, equal_quota


def ties(base: StateDict, models: Models, density: float = 0.2, scaling: float = 1.0, trim: str = "per-tensor") -> StateDict:
    """TIES-merging (Yadav et al., 2023): trim, elect sign, disjoint mean, then theta_0 + lambda tau.

    Each task vector keeps its int(density * n) entries of largest magnitude (exactly that many;
    equal magnitudes are taken in index order), the rest set to 0: per tensor, n the tensor's
    entries (``trim = "per-tensor"``, as peft and mergekit trim), or over the whole model, n all
    merged entries (``trim = "global"``, one threshold per task vector). Then see
    :func:`_elect_and_merge` (two passes over ``models``; an exact sign tie elects +1).
    """
    _check(models)
    if trim not in ("per-tensor", "global"):
        raise ValueError(f"unknown trim {trim!r}; use 'per-tensor' or 'global'")

    def trim_per_tensor(index: int, model: StateDict) -> Callable[[str, torch.Tensor], torch.Tensor]:
        def sparse(key: str, tau: torch.Tensor) -> torch.Tensor:
            kept = keep_largest(tau.abs().flatten(), int(density * tau.numel())).view(tau.shape)
            return torch.where(kept, tau, torch.zeros_like(tau))

        return sparse

    plans: dict[int, tuple[float, dict[str, int]]] = {}

    def trim_globally(index: int, model: StateDict) -> Callable[[str, torch.Tensor], torch.Tensor]:
        if index not in plans:
            plans[index] = global_trim_plan(model, base, density)
        threshold, equal_quota = plans[index]

        def sparse(key: str, tau: torch.Tensor) -> torch.Tensor:
            magnitude = tau.abs()
            equal = (magnitude == threshold).flatten()
            first_equal = (equal & (torch.cumsum(equal, 0) <= equal_quota.get(key, 0))).view(tau.shape)
            return torch.where((magnitude > threshold) | first_equal, tau, torch.zeros_like(tau))

        return sparse

    return _elect_and_merge(base, models, scaling, trim_per_tensor if trim == "per-tensor" else trim_globally)


# ----------------------------------------------------------------------------- DARE


def dare_mask(shape: torch.Size, drop: float, seed: int, model_id: int, key: str) -> torch.Tensor:
    """The kept entries (True) of one tensor: each dropped with probability ``drop``.

    Drawn on the CPU from a generator seeded by (seed, model id, key), so the same
    model gets the same mask on any device and in every pass over it.
    """
    generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{model_id}:{key}".encode()))
    return torch.rand(shape, generator=generator) >= drop


def dare(
    base: StateDict,
    models: Models,
    drop: float = 0.5,
    seed: int = 0,
    combine: str = "linear",
    scaling: float = 1.0,
    model_ids: Sequence[int] | None = None,
) -> StateDict:
    """DARE (Yu et al., 2024, "Language models are Super Mario"): drop, rescale, combine.

    Each entry of each task vector is dropped with probability p = ``drop`` and the
    survivors are rescaled by 1/(1-p); the results are combined linearly
    (theta_0 + lambda sum_i tau_i) or TIES-style (``combine = "ties"``: sign
    election and disjoint mean, DARE-TIES). ``model_ids`` (default 0, 1, ...) seed
    each model's masks, so a model keeps its mask from merge to merge.
    """
    _check(models)
    ids = list(model_ids) if model_ids is not None else list(range(len(models)))
    if len(ids) != len(models):
        raise ValueError(f"{len(ids)} model ids for {len(models)} models")
    rescale = 1 / (1 - drop)

    def drop_and_rescale(index: int, model: StateDict) -> Callable[[str, torch.Tensor], torch.Tensor]:
        def sparse(key: str, tau: torch.Tensor) -> torch.Tensor:
            kept = dare_mask(tau.shape, drop, seed, ids[index], key).to(tau.device)
            return torch.where(kept, tau * rescale, torch.zeros_like(tau))

        return sparse

    return _combine(base, models, scaling, drop_and_rescale, combine)


def _combine(base: StateDict, models: Models, scaling: float, sparsify: Sparsifier, combine: str) -> StateDict:
    if combine == "linear":
        return _linear_combine(base, models, scaling, sparsify)
    if combine == "ties":
        return _elect_and_merge(base, models, scaling, sparsify)
    raise ValueError(f"unknown combine {combine!r}; use 'linear' or 'ties'")


# ----------------------------------------------------------------------------- Breadcrumbs


def breadcrumbs_mask(tau: torch.Tensor, drop_largest: float, drop_smallest: float) -> torch.Tensor:
    """Kept entries of one tensor: all but the floor(drop_largest n) largest and floor(drop_smallest n) smallest |tau|."""
    count = tau.numel()
    largest, smallest = math.floor(drop_largest * count), math.floor(drop_smallest * count)
    order = torch.argsort(tau.abs().flatten(), stable=True)
    kept = torch.ones(count, dtype=torch.bool, device=tau.device)
    kept[order[:smallest]] = False
    if largest:
        kept[order[count - largest :]] = False
    return kept.view(tau.shape)


def breadcrumbs(
    base: StateDict,
    models: Models,
    drop_largest: float = 0.01,
    drop_smallest: float = 0.85,
    combine: str = "linear",
    scaling: float = 1.0,
) -> StateDict:
    """Model Breadcrumbs (Davari & Belilovsky, 2024): per tensor, drop the largest and the smallest |tau|, then combine.

    The outliers (largest) and the noise (smallest) of each task vector are set to 0,
    per tensor (per layer, as in the paper); the rest is combined linearly
    (theta_0 + lambda sum_i tau_i, the paper) or TIES-style (``combine = "ties"``).
    """
    _check(models)

    def keep_middle(index: int, model: StateDict) -> Callable[[str, torch.Tensor], torch.Tensor]:
        return lambda key, tau: torch.where(breadcrumbs_mask(tau, drop_largest, drop_smallest), tau, torch.zeros_like(tau))

    return _combine(base, models, scaling, keep_middle, combine)


# ----------------------------------------------------------------------------- MagMax


def magmax(base: StateDict, models: Models, scaling: float = 1.0) -> StateDict:
    """MagMax (Marczak et al., 2024): per entry, the task-vector value of largest magnitude; theta_0 + lambda tau.

    On equal magnitudes the earlier model's value is kept.
    """
    _check(models)
    keys = merged_keys(base)
    strongest: dict[str, torch.Tensor] = {}
    newest: StateDict = {}
    for model in models:
        for key in keys:
            tau = task_vector(model, base, key)
            if key not in strongest:
                strongest[key] = tau
            else:
                strongest[key] = torch.where(tau.abs() > strongest[key].abs(), tau, strongest[key])
        newest = model
    return _finish(base, newest, _add_scaled(base, strongest, scaling))


# ----------------------------------------------------------------------------- Model Stock


def model_stock(base: StateDict, models: Models) -> StateDict:
    """Model Stock (Jang et al., 2024) for N fine-tuned models, per tensor.

    With cos the mean pairwise cosine between the task vectors tau_i, t = N cos / (1 + (N-1) cos)
    and the result is t mean_i theta_i + (1 - t) theta_0 = theta_0 + t mean_i tau_i (for two models,
    t = 2 cos / (1 + cos)). The mean pairwise cosine comes from one pass over ``models``: with
    u_i = tau_i / |tau_i|, sum_{i<j} cos_ij = (|sum_i u_i|^2 - N) / 2. One model is its own centre
    (t = 1). A tensor where some task vector is zero gives no angle to measure: it is the plain
    average (t = 1). Unit vectors summing to zero (1 + (N-1) cos <= 1e-12) give t = 0: theta_0.
    """
    _check(models)
    keys = merged_keys(base)
    total = {key: torch.zeros_like(base[key], dtype=_work_dtype(base[key])) for key in keys}
    unit_total = {key: torch.zeros_like(value) for key, value in total.items()}
    has_zero: dict[str, bool] = dict.fromkeys(keys, False)
    newest: StateDict = {}
    for model in models:
        for key in keys:
            tau = task_vector(model, base, key)
            norm = tau.norm()
            if norm == 0:
                has_zero[key] = True
            else:
                unit_total[key] += tau / norm
            total[key] += tau
        newest = model
    count = len(models)
    merged = {}
    for key in keys:
        if count == 1 or has_zero[key]:
            ratio = 1.0
        else:
            cosine = (float(unit_total[key].square().sum()) - count) / (count * (count - 1))
            denominator = 1 + (count - 1) * cosine
            ratio = count * cosine / denominator if denominator > 1e-12 else 0.0
        merged[key] = base[key].to(total[key].dtype) + ratio * total[key] / count
    return _finish(base, newest, merged)


# ----------------------------------------------------------------------------- LiNeS


def block_depths(keys: Sequence[str]) -> dict[str, float]:
    """layer/(L-1) for every key inside a transformer block, per tower.

    A key such as ``visual.transformer.resblocks.3.attn.in_proj_weight`` is in block 3
    of the tower ``visual.transformer``; L is that tower's number of blocks (the image
    and text towers of a CLIP may differ). A tower with one block gets depth 0.
    Keys outside any block are absent from the result.
    """
    located: dict[str, tuple[str, int]] = {}
    blocks: dict[str, int] = {}
    for key in keys:
        parts = key.split(".")
        for position in range(len(parts) - 2):
            if parts[position] == "resblocks" and parts[position + 1].isdigit():
                tower = ".".join(parts[:position])
                layer = int(parts[position + 1])
                located[key] = (tower, layer)
                blocks[tower] = max(blocks.get(tower, 0), layer + 1)
                break
    return {key: (layer / (blocks[tower] - 1) if blocks[tower] > 1 else 0.0) for key, (tower, layer) in located.items()}


def lines(base: StateDict, merged: StateDict, alpha: float, beta: float) -> StateDict:
    """LiNeS (Wang et al., 2025, "LiNeS: Post-training layer scaling prevents forgetting and enhances model merging").

    Scales the merged task vector merged - theta_0 by alpha + beta * layer/(L-1):
    shallow blocks stay near theta_0, deep blocks keep more of the update. Parameters
    outside the transformer blocks (embeddings, final norms, projections,
    logit_scale) get alpha, the shallowest factor, as the paper's reference code does.
    """
    depths = block_depths(list(base))
    scaled = {}
    for key in merged_keys(base):
        tau = task_vector(merged, base, key)
        scaled[key] = base[key].to(tau.dtype) + (alpha + beta * depths.get(key, 0.0)) * tau
    return _finish(base, merged, scaled)


# ----------------------------------------------------------------------------- the operators as components


class Interpolation(MergeOperator):
    """Interpolation (model soup; WiSE-FT with two models): sum_i w_i theta_i with the schedule's weights."""

    def __init__(self, params: InterpolationParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return interpolate(base, models, weights)


class Slerp(MergeOperator):
    """SLERP: spherical interpolation of two task vectors per tensor (linear when nearly collinear)."""

    def __init__(self, params: SlerpParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return slerp(base, models, weights)


class TaskArithmetic(MergeOperator):
    """Task arithmetic (Ilharco et al., 2023): theta_0 + lambda sum_i tau_i."""

    def __init__(self, params: TaskArithmeticParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return task_arithmetic(base, models, self.params.scaling)


class Ties(MergeOperator):
    """TIES (Yadav et al., 2023): trim each task vector to its largest entries, elect a sign per entry, average the agreeing ones."""

    def __init__(self, params: TiesParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return ties(base, models, self.params.density, self.params.scaling, self.params.trim)


class Dare(MergeOperator):
    """DARE (Yu et al., 2024): drop task-vector entries with probability p, rescale by 1/(1-p), combine linearly or TIES-style."""

    def __init__(self, params: DareParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        p = self.params
        return dare(base, models, p.drop, p.seed, p.combine, p.scaling, model_ids)


class Breadcrumbs(MergeOperator):
    """Model Breadcrumbs (Davari & Belilovsky, 2024): drop the largest and the smallest |tau| per tensor, then combine."""

    def __init__(self, params: BreadcrumbsParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        p = self.params
        return breadcrumbs(base, models, p.drop_largest, p.drop_smallest, p.combine, p.scaling)


class MagMax(MergeOperator):
    """MagMax (Marczak et al., 2024): per entry the task-vector value of largest magnitude; theta_0 + lambda tau."""

    def __init__(self, params: MagMaxParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return magmax(base, models, self.params.scaling)


class ModelStock(MergeOperator):
    """Model Stock (Jang et al., 2024): the mean of the fine-tuned models pulled toward theta_0 by their task vectors' angles."""

    def __init__(self, params: ModelStockParams) -> None:
        self.params = params

    def __call__(self, base: StateDict, models: Models, weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        return model_stock(base, models)
