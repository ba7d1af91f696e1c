"""How far a run's zero-shot scores moved from its base model's: set by set and A_ZS, at the end and at the farthest.

A pool-only control (``data.mixture.update = 0``: pool replay alone for the stream's whole budget) asks whether
the base model is at a plateau: if replaying its own pretraining data still moves a zero-shot set, a change of
that set under a real stream mixes relearning with forgetting. ``fomo-host drift`` reads the evaluations of
each run (the base model's is the first) and checks them against stated bounds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import FomoError
from ..study.index import is_study_dir, read_index
from .groups import study_groups
from .runs import RunResult, load_runs

AGGREGATE = "A_ZS"
"""The row of the zero-shot aggregate, beside the sets' rows."""


@dataclass(frozen=True)
class Drift:
    """One zero-shot set (or A_ZS) of one run: its base score, its change at the end, its largest change along the stream."""

    run: str
    name: str
    base: float
    final_change: float
    largest_change: float
    largest_at_task: int

    def exceeds(self, bound: float | None) -> bool:
        return bound is not None and abs(self.largest_change) > bound + 1e-12


def run_drift(run: RunResult) -> list[Drift]:
    """Every zero-shot set's drift, then A_ZS's, of one run (sets in the order the run evaluated them)."""
    if len(run.records) < 2:
        raise FomoError(f"{run.run_dir}: no evaluation after the base model's yet, so nothing has moved")
    base = run.records[0]
    names = list(base.get("groups", {}).get("zero_shot", []))
    if not names:
        raise FomoError(f"{run.run_dir}: the run has no zero-shot sets")
    drifts = []
    for name in [*names, AGGREGATE]:
        values = [float(record["scores"][name] if name != AGGREGATE else record[AGGREGATE]) for record in run.records]
        changes = [value - values[0] for value in values]
        farthest = max(range(1, len(changes)), key=lambda index: abs(changes[index]))
        drifts.append(Drift(run.label, name, values[0], changes[-1], changes[farthest], farthest))
    return drifts


def load_drift_runs(paths: list[Path]) -> list[RunResult]:
    """The finished runs of study directories (labelled "point seed N") and the run directories given."""
    studies: list[tuple[Path, list[RunResult]]] = []
    run_dirs: list[Path] = []
    for path in paths:
        if is_study_dir(path):
            finished = [run for group in study_groups(read_index(path)) for run in group.runs]
            if not finished:
                raise FomoError(f"{path}: no finished run in this study yet")
            studies.append((path, finished))
        elif path.is_dir():
            run_dirs.append(path)
        else:
            raise FomoError(f"{path}: no such run or study directory")
    labels = Counter(run.label for _, finished in studies for run in finished)
    runs = [  # two studies' runs of one label ("pool only seed 1") are told apart by their study's directory
        replace(run, label=f"{path.name}: {run.label}") if labels[run.label] > 1 else run for path, finished in studies for run in finished
    ]
    return runs + load_runs(run_dirs)  # runs given by directory keep distinct labels (seed-0 of two studies)


def violations(drifts: list[Drift], max_set_change: float | None, max_aggregate_change: float | None) -> list[Drift]:
    """The drifts beyond their bound (a set's bound for sets, the aggregate's for A_ZS)."""
    return [drift for drift in drifts if drift.exceeds(max_aggregate_change if drift.name == AGGREGATE else max_set_change)]


@dataclass(frozen=True)
class RunDrift:
    """One run's drift in a line: its A_ZS (base, largest change) and the zero-shot set that moved farthest."""

    aggregate: Drift
    farthest_set: Drift
    beyond: int

    @property
    def run(self) -> str:
        return self.aggregate.run

    @property
    def base(self) -> float:
        """The base model's A_ZS."""
        return self.aggregate.base

    @classmethod
    def of(cls, drifts: list[Drift], beyond: set[Drift]) -> RunDrift:
        """The summary of one run's drifts (its sets' rows, then A_ZS's, as ``run_drift`` gives them)."""
        farthest = max(drifts[:-1], key=lambda drift: abs(drift.largest_change))
        return cls(drifts[-1], farthest, sum(drift in beyond for drift in drifts))


def summarise_runs(runs_drifts: list[list[Drift]], beyond: set[Drift]) -> list[RunDrift]:
    """A line per run, from each run's own drifts (two studies' runs may share a label, never a list)."""
    return [RunDrift.of(run_drifts, beyond) for run_drifts in runs_drifts]
