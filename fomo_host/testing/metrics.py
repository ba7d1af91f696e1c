"""Conformance tests for metrics: subclass :class:`MetricConformance` in your plugin's tests.

::

    from fomo_host.testing import MetricConformance

    class TestMyMetric(MetricConformance):
        metric_name = "my-metric"
        task_types = ("classification",)

A subclass gets, on a toy CLIP and toy sets (no plugin needed): the params validate; the
metric applies to the task types it names and to no other; its values are named by
non-empty strings, include ``primary``, are finite and lie in ``value_range``; two calls
agree, and so do batch sizes; and an evaluation on a subset of the test split
(``context.subset``) equals the evaluation of a set holding only that subset.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from typing import Any, ClassVar

import pytest
import torch
from pydantic import ValidationError

from ..components import EvaluationContext, Metric
from ..data import ImageTextDataset, TensorSampleSet
from .helpers import build_component, validate_params
from .toys import toy_bundle, toy_classification_set, toy_retrieval_set


def context(batch_size: int = 64, subset: torch.Tensor | None = None) -> EvaluationContext:
    return EvaluationContext(torch.device("cpu"), batch_size, contextlib.nullcontext, subset)


def restricted(dataset: ImageTextDataset, indices: torch.Tensor) -> ImageTextDataset:
    """The dataset whose test split holds only ``indices`` (in that order)."""
    test = dataset.test
    assert isinstance(test, TensorSampleSet)
    only = TensorSampleSet(test.image_tensor[indices], test.labels[indices], [test.caption_choices[i] for i in indices.tolist()])
    return replace(dataset, test=only)


class MetricConformance:
    """The conformance suite of the ``metric`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    metric_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the metric must reject (None: only the unknown-key check)."""
    task_types: ClassVar[tuple[str, ...]] = ("classification", "retrieval")
    """The task types of the datasets the metric applies to."""
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    tolerance: ClassVar[float] = 1e-6

    def metric(self) -> Metric:
        metric: Metric = build_component("metric", self.metric_name, self.params)
        return metric

    def datasets(self) -> dict[str, ImageTextDataset]:
        return {"classification": toy_classification_set(), "retrieval": toy_retrieval_set()}

    def applicable(self) -> list[ImageTextDataset]:
        return [dataset for task, dataset in self.datasets().items() if task in self.task_types]

    def test_params_validate_and_reject_bad_values(self) -> None:
        validate_params("metric", self.metric_name, self.params)
        with pytest.raises(ValidationError):
            validate_params("metric", self.metric_name, {**self.params, "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                validate_params("metric", self.metric_name, {**self.params, **self.invalid_params})

    def test_applies_to_the_task_types_it_names(self) -> None:
        metric = self.metric()
        for task, dataset in self.datasets().items():
            assert metric.applies_to(dataset) is (task in self.task_types), f"applies_to a {task} set"

    def test_values_are_named_finite_and_in_range(self) -> None:
        metric, bundle = self.metric(), toy_bundle()
        low, high = self.value_range
        for dataset in self.applicable():
            values = metric(bundle, dataset, context())
            assert metric.primary in values, f"{dataset.task}: the primary value {metric.primary!r} is missing from {sorted(values)}"
            for name, value in values.items():
                assert isinstance(name, str) and name, f"{dataset.task}: a value without a name"
                assert isinstance(value, float) and math.isfinite(value), f"{dataset.task}: {name} = {value!r}"
                assert low <= value <= high, f"{dataset.task}: {name} = {value} outside [{low}, {high}]"

    def test_deterministic_and_independent_of_the_batch_size(self) -> None:
        metric, bundle = self.metric(), toy_bundle()
        for dataset in self.applicable():
            first, again, small_batches = (metric(bundle, dataset, context(size)) for size in (64, 64, 3))
            assert first == again, f"{dataset.task}: two evaluations differ"
            assert first.keys() == small_batches.keys()
            for name in first:
                assert math.isclose(first[name], small_batches[name], abs_tol=self.tolerance), (
                    f"{dataset.task}: {name} depends on batch size"
                )

    def test_a_subset_is_evaluated_as_a_set_of_only_that_subset(self) -> None:
        metric, bundle = self.metric(), toy_bundle()
        for dataset in self.applicable():
            assert dataset.test is not None
            subset = torch.arange(0, len(dataset.test), 2)
            on_subset = metric(bundle, dataset, context(subset=subset))
            alone = metric(bundle, restricted(dataset, subset), context())
            assert on_subset.keys() == alone.keys()
            for name in alone:
                assert math.isclose(on_subset[name], alone[name], abs_tol=self.tolerance), f"{dataset.task}: {name} on a subset"
