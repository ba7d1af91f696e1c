"""The stream of a run that updates have extended: the run's own tasks, then each update's, then how many are trained.

A run's stream is its adaptation datasets' concepts, ordered and cut into
``data.num_tasks`` tasks. Each ``[[data.updates]]`` entry (written by ``fomo-host
update`` when new adaptation data arrived) appends the tasks of its datasets, ordered by
the same ordering and cut into its own ``num_tasks``. ``data.train_tasks`` stops the
run after that many tasks of the whole stream (an update trains more of them).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..components import Ordering
from ..data import Concept, ImageTextDataset
from ..errors import SpecError
from ..spec import RunSpec
from .stream import build_tasks


def first_concepts(spec: RunSpec, adaptation: Sequence[ImageTextDataset]) -> list[Concept]:
    """The concepts of the run's own stream: those of the adaptation datasets no update brought."""
    names = {d.name for d in adaptation}
    claimed: set[str] = set()
    for index, update in enumerate(spec.data.updates):
        for name in update.adaptation:
            if name not in names:
                raise SpecError(
                    f"data.updates.{index}.adaptation: {name!r} is not an adaptation dataset of this run; "
                    f"adaptation datasets: {', '.join(sorted(names))}"
                )
            if name in claimed:
                raise SpecError(f"data.updates.{index}.adaptation: {name!r} joined the stream in an earlier update already")
            claimed.add(name)
    return [concept for dataset in adaptation if dataset.name not in claimed for concept in dataset.concepts()]


def build_stream(spec: RunSpec, adaptation: Sequence[ImageTextDataset], ordering: Ordering) -> list[list[Concept]]:
    """The tasks this run (or update) trains, from the first: its own stream, each update's tasks, cut at data.train_tasks."""
    by_name = {dataset.name: dataset for dataset in adaptation}
    tasks = build_tasks(first_concepts(spec, adaptation), ordering, spec.data.num_tasks)
    for update in spec.data.updates:
        concepts = [concept for name in update.adaptation for concept in by_name[name].concepts()]
        tasks += build_tasks(concepts, ordering, update.num_tasks)
    wanted = spec.data.train_tasks
    if wanted is not None:
        if wanted > len(tasks):
            raise SpecError(f"data.train_tasks is {wanted} but the stream has only {len(tasks)} tasks; lower train_tasks")
        tasks = tasks[:wanted]
    return tasks
