"""Stream orderings: seeded shuffles, dataset-incremental chunks, explicit stream files."""

from __future__ import annotations

import json

import pytest
from fomo_orderings.orderings import (
    DatasetIncremental,
    DatasetIncrementalParams,
    ExplicitOrdering,
    ExplicitParams,
    RandomOrdering,
    RandomParams,
)
from pydantic import ValidationError

from fomo_host.api import BuildContext, Concept, FomoError
from fomo_host.testing import stream_tasks

CONCEPTS = [Concept("a", f"a{i}") for i in range(5)] + [Concept("b", f"b{i}") for i in range(3)]


def context(seed: int = 0) -> BuildContext:
    return BuildContext(seed=seed, cache_dir=None)  # type: ignore[arg-type]


def test_random_is_a_seeded_permutation_independent_of_input_order():
    first = RandomOrdering(RandomParams(), context(0))(CONCEPTS, 2)
    again = RandomOrdering(RandomParams(), context(0))(list(reversed(CONCEPTS)), 2)
    other = RandomOrdering(RandomParams(), context(1))(CONCEPTS, 2)
    assert first == again and sorted(first) == sorted(CONCEPTS) and first != other
    assert RandomOrdering(RandomParams(seed=1), context(0))(CONCEPTS, 2) == other


def test_dataset_incremental_keeps_datasets_contiguous_in_the_given_order():
    ordering = DatasetIncremental(DatasetIncrementalParams(datasets=["b", "a"]), context())
    assert ordering(CONCEPTS, 2) == CONCEPTS[5:] + CONCEPTS[:5]
    per_dataset = DatasetIncremental(DatasetIncrementalParams(one_task_per_dataset=True), context())
    assert stream_tasks(CONCEPTS, per_dataset, 99) == [CONCEPTS[:5], CONCEPTS[5:]]
    with pytest.raises(FomoError, match="missing \\['b'\\]"):
        DatasetIncremental(DatasetIncrementalParams(datasets=["a"]), context())(CONCEPTS, 2)


def test_explicit_reads_the_papers_stream_format(tmp_path):
    stream = tmp_path / "stream.json"
    entries = [f"{c.dataset}+++{c.classname}" for c in reversed(CONCEPTS)] + ["c+++not-in-this-run"]
    stream.write_text(json.dumps(entries))
    assert ExplicitOrdering(ExplicitParams(file=stream), context())(CONCEPTS, 2) == list(reversed(CONCEPTS))
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps([str(c) for c in CONCEPTS[:4]]))
    with pytest.raises(FomoError, match="4 stream concepts are not listed"):
        ExplicitOrdering(ExplicitParams(file=ours), context())(CONCEPTS, 2)
    with pytest.raises(ValidationError, match="does not exist"):
        ExplicitParams(file=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FomoError, match="not valid JSON"):
        ExplicitOrdering(ExplicitParams(file=bad), context())
