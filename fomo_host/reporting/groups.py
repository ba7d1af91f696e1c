"""Runs grouped by study point (runs that differ only by seed): mean and spread over seeds, for compare and report.

A study directory gives one group per point, labelled by the point's label
(variant and grid values); a plain run directory given beside it is a group of
one. Only finished runs count: a run still going has no final values yet, and
mixing its last evaluation with other seeds' final ones would be wrong.
"""

from __future__ import annotations

import copy
import dataclasses
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


# two-sided 5% critical values of Student's t for 1 to 30 degrees of freedom
_T_CRITICAL = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_critical(degrees: int) -> float:
    """Two-sided 5% critical value of Student's t (the table to 30 degrees, then the Cornish-Fisher expansion)."""
    if degrees < 1:
        raise ValueError("Student's t needs at least one degree of freedom")
    if degrees <= len(_T_CRITICAL):
        return _T_CRITICAL[degrees - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * degrees) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * degrees**2)


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by its continued fraction (Lentz's method; Numerical Recipes' betacf), to about 1e-12."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - regularized_incomplete_beta(1.0 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-14:
            break
    return front * result


def t_test_p(t: float, degrees: int) -> float:
    """Two-sided p-value of Student's t with ``degrees`` degrees of freedom: I_{d/(d+t^2)}(d/2, 1/2)."""
    return regularized_incomplete_beta(degrees / (degrees + t * t), degrees / 2.0, 0.5)


CORRECTIONS = ("holm", "bh", "none")
"""How ``compare --against`` adjusts its p-values for the number of comparisons in the table."""


def adjust_p_values(p_values: list[float], correction: str) -> list[float]:
    """Adjusted p-values in the given order: Holm's step-down (family-wise error), Benjamini-Hochberg's step-up (false
    discovery rate), or none."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [0.0] * count
    if correction == "none":
        return list(p_values)
    if correction == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (count - rank) * p_values[i]))
            adjusted[i] = running
        return adjusted
    if correction == "bh":
        running = 1.0
        for rank in range(count - 1, -1, -1):
            i = order[rank]
            running = min(running, count * p_values[i] / (rank + 1))
            adjusted[i] = min(1.0, running)
        return adjusted
    raise ValueError(f"unknown correction {correction!r}; one of {', '.join(CORRECTIONS)}")


SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Difference:
    """A point's value minus a reference point's, seed by seed (same seed: same base model and data order).

    ``p`` is a paired t-test's two-sided p-value (None with fewer than two shared seeds: no spread); ``p_adjusted``
    the same corrected for the number of comparisons in the table (see :func:`adjust_p_values`), and ``shown`` whether
    it is below 5%: the mean difference is larger than its seeds' spread allows by chance.
    """

    mean: float
    std: float | None
    n: int
    shown: bool
    p: float | None = None
    p_adjusted: float | None = None

    @classmethod
    def paired(cls, values: dict[int, float], reference: dict[int, float]) -> Difference:
        seeds = sorted(seed for seed in values.keys() & reference.keys() if not math.isnan(values[seed] - reference[seed]))
        differences = [values[seed] - reference[seed] for seed in seeds]
        if not differences:
            return cls(float("nan"), None, 0, False)
        mean = statistics.fmean(differences)
        if len(differences) < 2:
            return cls(mean, None, 1, False)
        std = statistics.stdev(differences)
        if std == 0.0:
            p = 0.0 if mean != 0.0 else 1.0
            return cls(mean, std, len(differences), mean != 0.0, p, p)
        t = mean / (std / math.sqrt(len(differences)))
        p = t_test_p(t, len(differences) - 1)
        return cls(mean, std, len(differences), p < SIGNIFICANCE, p, p)

    def corrected(self, p_adjusted: float) -> Difference:
        return dataclasses.replace(self, p_adjusted=p_adjusted, shown=p_adjusted < SIGNIFICANCE)


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

    def by_seed(self, value: Any) -> dict[int, float]:
        """``value(run) -> float`` of each finished run, by its seed (none for a run directory given on its own)."""
        if len(self.seeds) != len(self.runs):
            return {}
        return {seed: value(run) for seed, run in zip(self.seeds, self.runs, strict=True)}


def study_groups(index: StudyIndex, prefix: str = "") -> list[RunGroup]:
    groups = []
    # a study an older fomo-host ran may hold two points with one label: its group number tells them apart
    labels = [runs[0].label for runs in index.groups().values()]
    for runs in index.groups().values():
        first = runs[0]
        finished = [run for run in runs if run.status == "finished" and (index.run_path(run) / "summary.json").is_file()]
        label = f"{prefix}{first.label}" + (f" (#{first.group})" if labels.count(first.label) > 1 else "")
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
