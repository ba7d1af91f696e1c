"""Evaluating deployed weights on every evaluation set, in inference mode with large batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..components import EvaluationContext, Metric, ModelBundle
from ..data import ImageTextDataset
from ..errors import SpecError
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


def subset_indices(size: int, fraction: float, generator: torch.Generator) -> torch.Tensor | None:
    if fraction >= 1.0:
        return None
    count = max(1, round(size * fraction))
    return torch.randperm(size, generator=generator)[:count].sort().values


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

    A dataset's values are namespaced by metric (``"retrieval-recall/recall@5"``): two metrics
    returning a value of the same name would otherwise overwrite each other in the record.
    """
    bundle.model.eval()
    all_metrics: dict[str, dict[str, float]] = {}
    scores: dict[str, float] = {}
    for entry in plan:
        assert entry.dataset.test is not None
        context = EvaluationContext(
            device=runtime.device,
            batch_size=batch_size,
            autocast=runtime.autocast,
            subset=subset_indices(len(entry.dataset.test), subset_fraction, generator),
        )
        values: dict[str, float] = {}
        with torch.inference_mode():
            for index, (label, metric) in enumerate(entry.metrics):
                result = metric(bundle, entry.dataset, context)
                values.update({f"{label}/{name}": value for name, value in result.items()})
                if index == 0:
                    scores[entry.dataset.name] = float(result[metric.primary])
        all_metrics[entry.dataset.name] = {k: float(v) for k, v in values.items()}
        if on_dataset is not None:
            on_dataset(entry.dataset.name)
    return all_metrics, scores
