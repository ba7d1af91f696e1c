"""Conformance tests for stream orderings: subclass :class:`OrderingConformance` in your plugin's tests.

::

    from fomo_host.testing import OrderingConformance

    class TestMyOrdering(OrderingConformance):
        ordering_name = "my-ordering"
        params = {"seed": 3}

A subclass gets, on toy adaptation sets and a toy CLIP (for orderings that ask the
model): the params validate; the stream holds every concept exactly once for any number
of tasks, as the host cuts it; the order is deterministic (twice, and from a fresh
instance) and the input list is left as it was; and where the Params have ``reverse``,
it reads the same stream backwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from ..components import BuildContext, Ordering
from ..data import Concept
from .helpers import build_component, component, stream_tasks, validate_params
from .toys import toy_bundle, toy_classification_set, toy_retrieval_set


class OrderingConformance:
    """The conformance suite of the ``ordering`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    ordering_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the ordering must reject (None: only the unknown-key check)."""

    def params_for(self, tmp_path: Path, concepts: list[Concept]) -> dict[str, Any]:
        """The params of the runs; override to write a file the ordering reads (the toy concepts are given)."""
        return dict(self.params)

    def context(self, tmp_path: Path) -> BuildContext:
        datasets = [
            toy_classification_set("toy-a", classes=5),
            toy_classification_set("toy-b", classes=3, seed=1),
            toy_retrieval_set("toy-c"),
        ]
        return BuildContext(
            seed=0, cache_dir=tmp_path / "cache", image_size=16, datasets={d.name: d for d in datasets}, bundle=toy_bundle()
        )

    def concepts(self, context: BuildContext) -> list[Concept]:
        return [concept for dataset in context.datasets.values() for concept in dataset.concepts()]

    def ordering(self, tmp_path: Path, **overrides: Any) -> Ordering:
        context = self.context(tmp_path)
        params = {**self.params_for(tmp_path, self.concepts(context)), **overrides}
        ordering: Ordering = build_component("ordering", self.ordering_name, params, context)
        return ordering

    def flat(self, tmp_path: Path, num_tasks: int, **overrides: Any) -> list[Concept]:
        concepts = self.concepts(self.context(tmp_path))
        return [concept for task in stream_tasks(concepts, self.ordering(tmp_path, **overrides), num_tasks) for concept in task]

    def test_params_validate_and_reject_bad_values(self, tmp_path: Path) -> None:
        params = self.params_for(tmp_path, self.concepts(self.context(tmp_path)))
        validate_params("ordering", self.ordering_name, params)
        with pytest.raises(ValidationError):
            validate_params("ordering", self.ordering_name, {**params, "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                validate_params("ordering", self.ordering_name, {**params, **self.invalid_params})

    def test_every_concept_exactly_once_for_any_number_of_tasks(self, tmp_path: Path) -> None:
        context = self.context(tmp_path)
        concepts = self.concepts(context)
        for num_tasks in (1, 2, 3):
            tasks = stream_tasks(concepts, self.ordering(tmp_path), num_tasks)  # the host checks exactly-once itself
            assert all(tasks), f"{num_tasks} tasks: an empty task"

    def test_deterministic_and_leaves_its_input_alone(self, tmp_path: Path) -> None:
        concepts = self.concepts(self.context(tmp_path))
        given = list(concepts)
        ordering = self.ordering(tmp_path)
        first = ordering(given, 3)
        assert given == concepts, "the ordering changed the list it was given"
        assert ordering(list(concepts), 3) == first, "two calls order differently"
        assert self.ordering(tmp_path)(list(concepts), 3) == first, "two instances order differently"

    def test_reverse_reads_the_stream_backwards(self, tmp_path: Path) -> None:
        params_model = component("ordering", self.ordering_name).params
        if "reverse" not in params_model.model_fields:
            pytest.skip("the ordering has no reverse")
        assert self.flat(tmp_path, 3, reverse=True) == list(reversed(self.flat(tmp_path, 3)))
