"""Evaluating deployed weights on every evaluation set, in inference mode with large batches."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..components import EvaluationContext, Metric, ModelBundle
from ..data import ImageTextDataset
from ..errors import SpecError
from ..faults import fault_point
from ..resolve import ResolvedComponent
from .runtime import Runtime


@dataclass
class EvaluationSet:
    dataset: ImageTextDataset
    metrics: list[tuple[str, Metric]]


def build_metrics(metrics: Sequence[ResolvedComponent]) -> list[tuple[str, Metric]]:
    """The spec's metrics (``evaluation.metrics``, resolved), built, each with the label its values are recorded under.

    The label is the metric's name, or ``name.INDEX`` (its place in evaluation.metrics) where the
    spec lists one metric twice (with different params), so that no two metrics share a label.
    """
    names = [metric.name for metric in metrics]
    return [
        (metric.name if names.count(metric.name) == 1 else f"{metric.name}.{index}", metric.build()) for index, metric in enumerate(metrics)
    ]


def plan_evaluation(datasets: Sequence[ImageTextDataset], metrics: Sequence[tuple[str, Metric]]) -> list[EvaluationSet]:
    """Which metrics run on which dataset; every dataset needs at least one (its first gives the primary score)."""
    plan = []
    for dataset in datasets:
        chosen = [(name, metric) for name, metric in metrics if metric.applies_to(dataset)]
        if not chosen:
            raise SpecError(
                f"no metric in evaluation.metrics applies to {dataset.task} dataset {dataset.name!r}; "
                f"add one (e.g. 'zero-shot-accuracy' or 'retrieval-recall')"
            )
        plan.append(EvaluationSet(dataset, chosen))
    return plan


def validation_plan(plan: Sequence[EvaluationSet]) -> list[EvaluationSet]:
    """The plan on the validation splits: each dataset seen through its validation split (``evaluation.split = "validation"``)."""
    missing = [entry.dataset.name for entry in plan if entry.dataset.validation is None]
    if missing:
        raise SpecError(
            f"evaluation.split = 'validation': {', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} no validation split; "
            "give the source one (synthetic: validation_per_class; file-based sources: validation_fraction)"
        )
    return [EvaluationSet(dataclasses.replace(entry.dataset, test=entry.dataset.validation), entry.metrics) for entry in plan]


def validation_sets(plan: Sequence[EvaluationSet]) -> dict[str, dict[str, object]]:
    """Per evaluated set, how many samples each split holds and how its source made the validation split (the dataset's
    ``info["validation"]``: e.g. the fraction and seed it was carved with): what the run's summary records."""
    sets: dict[str, dict[str, object]] = {}
    for entry in plan:
        dataset = entry.dataset
        how = dataset.info.get("validation")
        sizes = {split: len(part) for split in ("train", "validation", "test") if (part := getattr(dataset, split)) is not None}
        sets[dataset.name] = {**sizes, **(how if isinstance(how, dict) else {})}
    return sets


def subset_indices(size: int, fraction: float, generator: torch.Generator) -> torch.Tensor | None:
    if fraction >= 1.0:
        return None
    count = max(1, round(size * fraction))
    return torch.randperm(size, generator=generator)[:count].sort().values


def shard_plan(sizes: Sequence[int], world_size: int) -> list[list[int]]:
    """Plan positions per process: the largest sets first, each to the process with the fewest samples so far."""
    shards: list[list[int]] = [[] for _ in range(world_size)]
    load = [0] * world_size
    for position in sorted(range(len(sizes)), key=lambda index: (-sizes[index], index)):
        process = min(range(world_size), key=lambda rank: (load[rank], rank))
        shards[process].append(position)
        load[process] += sizes[position]
    return [sorted(shard) for shard in shards]


def evaluate_set(bundle: ModelBundle, entry: EvaluationSet, context: EvaluationContext) -> tuple[dict[str, float], float]:
    """Every metric of one evaluation set: (all values, the first metric's primary score).

    The values are namespaced by metric (``"retrieval-recall/recall@5"``): two metrics returning a
    value of the same name would otherwise overwrite each other in the record.
    """
    values: dict[str, float] = {}
    score = math.nan
    with torch.inference_mode():
        for index, (label, metric) in enumerate(entry.metrics):
            result = metric(bundle, entry.dataset, context)
            values.update({f"{label}/{name}": value for name, value in result.items()})
            if index == 0:
                score = float(result[metric.primary])
    return {k: float(v) for k, v in values.items()}, score


ShardResults = dict[int, tuple[dict[str, float], float]]
"""Plan position -> (every value of the set, its primary score)."""


def evaluate(
    runtime: Runtime,
    bundle: ModelBundle,
    plan: Sequence[EvaluationSet],
    batch_size: int,
    subset_fraction: float,
    generator: torch.Generator,
    on_dataset: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Metrics per dataset and the primary score per dataset.

    With several processes each evaluates a share of the sets (balanced by size; a set is never split, so every
    value is what one process computes alone) and the results are gathered: every process returns all of them.
    """
    bundle.model.eval()
    # the subsets are drawn in plan order on every process, whichever sets it evaluates
    full_sizes = [len(entry.dataset.test) if entry.dataset.test is not None else 0 for entry in plan]
    subsets = [subset_indices(size, subset_fraction, generator) for size in full_sizes]
    sizes = [len(subset) if subset is not None else size for subset, size in zip(subsets, full_sizes, strict=True)]
    mine = shard_plan(sizes, runtime.world_size)[runtime.rank]
    context = EvaluationContext(device=runtime.device, batch_size=batch_size, autocast=runtime.autocast)
    results = evaluate_shard(bundle, plan, mine, subsets, context, on_dataset)
    if runtime.distributed:
        gathered: list[ShardResults | None] = [None] * runtime.world_size
        torch.distributed.all_gather_object(gathered, results)
        for position, entry in enumerate(plan):
            if position not in results and on_dataset is not None:
                on_dataset(entry.dataset.name)
        results = {position: result for shard in gathered if shard for position, result in shard.items()}
    all_metrics = {entry.dataset.name: results[position][0] for position, entry in enumerate(plan)}
    scores = {entry.dataset.name: results[position][1] for position, entry in enumerate(plan)}
    return all_metrics, scores


def evaluate_shard(
    bundle: ModelBundle,
    plan: Sequence[EvaluationSet],
    positions: Sequence[int],
    subsets: Sequence[torch.Tensor | None],
    context: EvaluationContext,
    on_dataset: Callable[[str], None] | None = None,
) -> ShardResults:
    """The sets at ``positions`` of the plan, each on its subset (None: the whole test split)."""
    results: ShardResults = {}
    for position in positions:
        entry = plan[position]
        results[position] = evaluate_set(bundle, entry, dataclasses.replace(context, subset=subsets[position]))
        fault_point("evaluation.dataset")
        if on_dataset is not None:
            on_dataset(entry.dataset.name)
    return results
