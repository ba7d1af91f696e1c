"""The stream: adaptation concepts, ordered by the ordering component, cut into tasks."""

from __future__ import annotations

from collections.abc import Sequence

from ..components import Ordering
from ..data import Concept
from ..errors import SpecError


def cut_into_tasks(concepts: Sequence[Concept], num_tasks: int) -> list[list[Concept]]:
    """Split an ordered list into ``num_tasks`` contiguous chunks whose sizes differ by at most one."""
    if num_tasks > len(concepts):
        raise SpecError(f"data.num_tasks is {num_tasks} but the stream has only {len(concepts)} concepts; lower num_tasks")
    base, extra = divmod(len(concepts), num_tasks)
    tasks, start = [], 0
    for index in range(num_tasks):
        size = base + (1 if index < extra else 0)
        tasks.append(list(concepts[start : start + size]))
        start += size
    return tasks


def build_tasks(concepts: Sequence[Concept], ordering: Ordering, num_tasks: int) -> list[list[Concept]]:
    """Order the concepts and cut them into tasks; an ordering may return the tasks itself."""
    ordered = ordering(list(concepts), num_tasks)
    explicit_tasks = bool(ordered) and isinstance(ordered[0], list)
    tasks = [list(t) for t in ordered if t] if explicit_tasks else cut_into_tasks(ordered, num_tasks)  # type: ignore[arg-type]
    flat = [concept for task in tasks for concept in task]
    if sorted(flat) != sorted(concepts):
        missing = sorted(set(concepts) - set(flat))[:3]
        extra = sorted(set(flat) - set(concepts))[:3]
        raise SpecError(
            f"the ordering must return each stream concept exactly once (missing e.g. {[str(c) for c in missing]}, "
            f"unexpected e.g. {[str(c) for c in extra]}, {len(flat)} returned for {len(concepts)})"
        )
    return tasks
