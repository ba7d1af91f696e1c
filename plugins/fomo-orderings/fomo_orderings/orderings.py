"""Stream orderings: how the adaptation concepts line up before the host cuts them into tasks.

Every ordering takes ``reverse``: the same stream read backwards (frequent-to-rare,
hard-to-easy, ...). A separate ``reverse`` ordering wrapping another one would have
to build that one by name, and orderings are built from a spec entry without the
registry; a flag on each ordering gives every reversal with one key and no nesting.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fomo_host.api import Concept, FomoError

from .params import DatasetIncrementalParams, ExplicitParams, FrequencyParams, RandomParams

if TYPE_CHECKING:
    from fomo_host.api import BuildContext

Ordered = list[Concept] | list[list[Concept]]


def reversed_if(ordered: Ordered, reverse: bool) -> Ordered:
    """The ordering backwards: a flat list reversed, or the tasks in reverse order with each task reversed."""
    if not reverse:
        return ordered
    if ordered and isinstance(ordered[0], list):
        return [list(reversed(task)) for task in reversed(ordered)]  # type: ignore[arg-type]
    return list(reversed(ordered))  # type: ignore[arg-type]


class RandomOrdering:
    """A seeded random permutation of all concepts (the paper's default stream)."""

    def __init__(self, params: RandomParams, context: BuildContext) -> None:
        self.seed = params.seed if params.seed is not None else context.seed
        self.reverse = params.reverse

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> Ordered:
        ordered = sorted(concepts)
        random.Random(self.seed).shuffle(ordered)
        return reversed_if(ordered, self.reverse)


class DatasetIncremental:
    """Whole datasets one after another, each a contiguous chunk of the stream."""

    def __init__(self, params: DatasetIncrementalParams, context: BuildContext) -> None:
        self.params = params

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> Ordered:
        present = list(dict.fromkeys(c.dataset for c in concepts))
        order = self.params.datasets or present
        unknown = [name for name in order if name not in present]
        missing = [name for name in present if name not in order]
        if unknown or missing:
            raise FomoError(
                f"data.ordering.params.datasets must list each adaptation dataset once: "
                f"unknown {unknown}, missing {missing}; adaptation datasets: {present}"
            )
        groups = [[c for c in concepts if c.dataset == name] for name in order]
        if self.params.one_task_per_dataset:
            return reversed_if(groups, self.params.reverse)
        return reversed_if([c for group in groups for c in group], self.params.reverse)


class ExplicitOrdering:
    """The order a stream file gives; every adaptation concept must appear exactly once."""

    def __init__(self, params: ExplicitParams, context: BuildContext) -> None:
        try:
            entries = json.loads(params.file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FomoError(f"{params.file}: not valid JSON: {exc}") from None
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise FomoError(f"{params.file}: expected a JSON list of strings")
        self.file = params.file
        self.order = [Concept.parse(entry) for entry in entries]
        self.reverse = params.reverse

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> Ordered:
        wanted = set(concepts)
        listed = [c for c in self.order if c in wanted]
        absent = [str(c) for c in concepts if c not in set(listed)]
        if absent:
            raise FomoError(f"{self.file}: {len(absent)} stream concepts are not listed, e.g. {absent[:3]}")
        if len(set(listed)) != len(listed):
            raise FomoError(f"{self.file}: a concept is listed twice")
        return reversed_if(listed, self.reverse)


def read_frequencies(path: Path) -> dict[str, float]:
    """``{concept text: count}`` from a JSON object or a CSV with ``concept`` and ``count`` columns."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FomoError(f"cannot read frequency table {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            table = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FomoError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(table, dict):
            raise FomoError(f"{path}: expected a JSON object mapping concepts to counts")
        rows = list(table.items())
    else:
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or not {"concept", "count"} <= set(reader.fieldnames):
            raise FomoError(f"{path}: expected a CSV with columns concept,count (found {reader.fieldnames})")
        rows = [(row["concept"], row["count"]) for row in reader]
    frequencies = {}
    for concept, count in rows:
        try:
            frequencies[str(concept).strip()] = float(count)
        except (TypeError, ValueError):
            raise FomoError(f"{path}: the count of {concept!r} is not a number: {count!r}") from None
    return frequencies


class FrequencyOrdering:
    """Concepts from rare to frequent by a concept-frequency table (e.g. counts of each class name in the
    pretraining captions, as the paper's frequency-ordered streams use); ``reverse`` goes frequent to rare."""

    def __init__(self, params: FrequencyParams, context: BuildContext) -> None:
        self.params = params
        self.frequencies = read_frequencies(params.file)
        self.by_concept = {Concept.parse(text): count for text, count in self.frequencies.items() if Concept.parse(text).classname}

    def count(self, concept: Concept) -> float | None:
        if concept in self.by_concept:
            return self.by_concept[concept]
        for text in (str(concept), concept.classname):
            if text is not None and text in self.frequencies:
                return self.frequencies[text]
        return self.params.default_count

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> Ordered:
        counts = {concept: self.count(concept) for concept in concepts}
        missing = [str(c) for c, n in counts.items() if n is None]
        if missing:
            raise FomoError(
                f"{self.params.file}: {len(missing)} stream concepts have no count, e.g. {missing[:3]}; "
                "add them or set data.ordering.params.default_count"
            )
        ordered = sorted(sorted(concepts), key=lambda c: counts[c])  # stable: ties keep the concepts' sorted order
        return reversed_if(ordered, self.params.reverse)
