"""Runs grouped by study point (runs that differ only by seed): mean and spread over seeds, for compare and report.

A study directory gives one group per point, labelled by the point's label
(variant and grid values); a plain run directory given beside it is a group of
one. Only finished runs count: a run still going has no final values yet, and
mixing its last evaluation with other seeds' final ones would be wrong.
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..results import AGGREGATES, summarise
from ..study.index import StudyIndex, is_study_dir, read_index
from .runs import RunResult, load_run


@dataclass(frozen=True)
class Stat:
    """A value over a group's seeds: mean, sample standard deviation (None for one seed) and how many seeds."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        finite = [value for value in values if value is not None and not math.isnan(value)]
        if not finite:
            return cls(float("nan"), None, 0)
        return cls(statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else None, len(finite))


@dataclass
class RunGroup:
    """One point of a study: its finished runs, their mean run and the spread of the mean trajectory."""

    label: str
    runs: list[RunResult]
    planned: int
    """Runs the point has in its study (one per seed); more than ``len(runs)`` while some are unfinished or failed."""
    seeds: list[int] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    """What tells this point from the study's others (its variant's and grid's overrides)."""
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return bool(self.runs)

    def mean_run(self) -> RunResult:
        """A run whose records are the seeds' means evaluation by evaluation (scores, A_KA, A_ZS, GM); labelled as the group."""
        if not self.runs:
            raise FomoError(f"{self.label}: no finished run")
        length = min(len(run.records) for run in self.runs)
        records = []
        for position in range(length):
            mean = copy.deepcopy(self.runs[0].records[position])
            mean.pop("metrics", None)  # per-metric detail of one seed would pass for the mean
            names = mean["scores"]
            mean["scores"] = {name: statistics.fmean(run.records[position]["scores"][name] for run in self.runs) for name in names}
            for key in AGGREGATES:
                mean[key] = statistics.fmean(run.records[position][key] for run in self.runs)
            records.append(mean)
        first = self.runs[0]
        return RunResult(first.run_dir, self.label, records, summarise(records), first.spec, first.written_summary)

    def spread(self) -> dict[str, list[float]]:
        """Per evaluation, the standard deviation over seeds of A_KA, A_ZS and GM (0 for one seed)."""
        length = min(len(run.records) for run in self.runs)
        spread = {}
        for key in AGGREGATES:
            columns = [[run.records[i][key] for run in self.runs] for i in range(length)]
            spread[key] = [statistics.stdev(values) if len(values) > 1 else 0.0 for values in columns]
        return spread

    def stat(self, value: Any) -> Stat:
        """``value(run) -> float`` over the group's runs."""
        return Stat.of([value(run) for run in self.runs])


def study_groups(index: StudyIndex, prefix: str = "") -> list[RunGroup]:
    groups = []
    for runs in index.groups().values():
        first = runs[0]
        finished = [run for run in runs if run.status == "finished" and (index.run_path(run) / "summary.json").is_file()]
        label = f"{prefix}{first.label}"
        results = [load_run(index.run_path(run), f"{label} seed {run.seed}") for run in finished]
        statuses: dict[str, int] = {}
        for run in runs:
            statuses[run.status] = statuses.get(run.status, 0) + 1
        own = _own_overrides(index, first.overrides)
        groups.append(RunGroup(label, results, len(runs), [run.seed for run in finished], own, statuses))
    return groups


def _own_overrides(index: StudyIndex, overrides: list[str]) -> list[str]:
    """A run's overrides without those every point starts with (the study's set and --set) and without its seed (the last)."""
    common = list(index.study.get("common") or [])
    return list(overrides[len(common) : -1]) if overrides[: len(common)] == common else list(overrides[:-1])


def load_groups(paths: list[Path]) -> list[RunGroup]:
    """Study directories give a group per point; run directories a group of one each."""
    studies = [path for path in paths if is_study_dir(path)]
    names = [path.resolve().name for path in studies]
    groups: list[RunGroup] = []
    for path in paths:
        if is_study_dir(path):
            prefix = f"{path.resolve().name}: " if len(studies) > 1 else ""
            if len(studies) > 1 and names.count(path.resolve().name) > 1:
                prefix = f"{path.resolve().parent.name}/{path.resolve().name}: "
            groups += study_groups(read_index(path), prefix)
        else:
            run = load_run(path)
            groups.append(RunGroup(run.label, [run] if run.complete else [], 1, [], [], {"finished" if run.complete else "running": 1}))
    labels = [group.label for group in groups]
    duplicate = next((label for label in labels if labels.count(label) > 1), None)
    if duplicate is not None:
        raise FomoError(f"{duplicate!r} is given twice")
    if not any(group.finished for group in groups):
        raise FomoError("no finished run to compare yet (only finished runs count in a study's groups)")
    return groups
