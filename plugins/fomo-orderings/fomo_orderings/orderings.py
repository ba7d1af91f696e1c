"""Stream orderings: how the adaptation concepts line up before the host cuts them into tasks."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fomo_host.components import BuildContext
from fomo_host.data import Concept
from fomo_host.errors import FomoError


class RandomParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = Field(default=None, description="shuffle seed; default: the run seed")


class RandomOrdering:
    """A seeded random permutation of all concepts (the paper's default stream)."""

    def __init__(self, params: RandomParams, context: BuildContext) -> None:
        self.seed = params.seed if params.seed is not None else context.seed

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> list[Concept]:
        ordered = sorted(concepts)
        random.Random(self.seed).shuffle(ordered)
        return ordered


class DatasetIncrementalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: list[str] | None = Field(default=None, description="dataset order; default: the order of data.adaptation")
    one_task_per_dataset: bool = Field(default=False, description="make each dataset exactly one task (ignores data.num_tasks)")


class DatasetIncremental:
    """Whole datasets one after another, each a contiguous chunk of the stream."""

    def __init__(self, params: DatasetIncrementalParams, context: BuildContext) -> None:
        self.params = params

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> list[Concept] | list[list[Concept]]:
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
            return groups
        return [c for group in groups for c in group]


class ExplicitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: Path = Field(description="a JSON list of 'dataset::class' (or the paper's 'DATASET+++class') in stream order")

    @field_validator("file")
    @classmethod
    def _exists(cls, value: Path) -> Path:
        if not value.expanduser().is_file():
            raise ValueError(f"stream file {str(value)!r} does not exist")
        return value.expanduser()


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

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> list[Concept]:
        wanted = set(concepts)
        listed = [c for c in self.order if c in wanted]
        absent = [str(c) for c in concepts if c not in set(listed)]
        if absent:
            raise FomoError(f"{self.file}: {len(absent)} stream concepts are not listed, e.g. {absent[:3]}")
        if len(set(listed)) != len(listed):
            raise FomoError(f"{self.file}: a concept is listed twice")
        return listed
