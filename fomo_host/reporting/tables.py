"""The comparison of runs, ranked by GM, as rows that the terminal table, JSON and the HTML page share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import FomoError
from .groups import Difference, RunGroup, Stat, adjust_p_values
from .runs import RunResult

COLUMNS: list[tuple[str, str, str]] = [
    # (key, heading, format)
    ("rank", "#", "d"),
    ("run", "run", "s"),
    ("method", "method", "s"),
    ("tasks", "tasks", "s"),
    ("GM", "GM", ".4f"),
    ("A_KA", "A_KA", ".4f"),
    ("A_ZS", "A_ZS", ".4f"),
    ("GM_mean", "GM mean", ".4f"),
    ("A_KA_mean", "A_KA mean", ".4f"),
    ("A_ZS_mean", "A_ZS mean", ".4f"),
    ("A_KA_auc", "A_KA auc", ".4f"),
    ("A_ZS_auc", "A_ZS auc", ".4f"),
    ("delta_A_KA", "ΔA_KA", "+.4f"),
    ("delta_A_ZS", "ΔA_ZS", "+.4f"),
    ("forgetting", "forgetting", ".4f"),
    ("bwt", "BWT", "+.4f"),
    ("steps_per_task", "steps/task", ",d"),
    ("maf_per_task", "MAF/task", ",.4g"),
]
"""Final values, trajectory means (evaluations after each task, the base model excluded), areas under the trajectories
per task (from the base model, included), the change from the base model, the mean forgetting (Chaudhry et al.) and
backward transfer on the adaptation sets, the budget (definitions: :data:`fomo_host.results.DEFINITIONS`)."""
TERMINAL_COLUMNS = [column for column in COLUMNS if column[0] not in {"A_KA_auc", "A_ZS_auc", "maf_per_task"}]
"""The terminal table leaves out the areas and the MAF (in the JSON and the HTML page) to stay readable."""


def comparison_rows(runs: list[RunResult]) -> list[dict[str, Any]]:
    """One row per run, best final GM first (a NaN GM ranks last)."""
    rows = []
    for run in runs:
        summary, budget = run.summary, run.budget
        rows.append(
            {
                "run": run.label,
                "method": run.method if run.merger == "none" else f"{run.method} + {run.merger}",
                "tasks": f"{summary['tasks_done']}/{run.num_tasks}",
                "complete": run.complete,
                **{key: summary[key]["final"] for key in ("GM", "A_KA", "A_ZS")},
                **{f"{key}_mean": summary[key]["mean"] for key in ("GM", "A_KA", "A_ZS")},
                **{f"{key}_auc": summary[key]["auc"] for key in ("GM", "A_KA", "A_ZS")},
                "delta_A_KA": summary["stability_plasticity"]["delta_A_KA"],
                "delta_A_ZS": summary["stability_plasticity"]["delta_A_ZS"],
                "forgetting": summary["forgetting"]["adaptation_mean"],
                "bwt": summary["backward_transfer"]["mean"],
                "steps_per_task": budget.get("steps_per_task"),
                "maf_per_task": budget.get("maf_per_task"),
                "run_dir": str(run.run_dir),
            }
        )
    rows.sort(key=lambda row: -row["GM"] if not math.isnan(row["GM"]) else math.inf)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def format_cell(value: Any, style: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, style)


# ----------------------------------------------------------------------------- groups of seeds


GROUP_COLUMNS: list[tuple[str, str, str]] = [
    ("rank", "#", "d"),
    ("point", "point", "s"),
    ("n", "seeds", "s"),
    ("GM", "final GM", ".3f"),
    ("A_KA", "final A_KA", ".3f"),
    ("A_ZS", "final A_ZS", ".3f"),
    ("GM_mean", "mean GM", ".3f"),
    ("A_KA_mean", "mean A_KA", ".3f"),
    ("A_ZS_mean", "mean A_ZS", ".3f"),
    ("A_ZS_lowest", "lowest A_ZS", ".3f"),
    ("forgetting", "forgetting", ".3f"),
    ("steps_per_task", "steps/task", ",d"),
]
"""Mean ± standard deviation over a point's seeds of: the final values, the trajectory means (evaluations after each
task), the lowest A_ZS after a task (forgetting a final point can hide), the mean forgetting on the adaptation sets."""
STAT_KEYS = ("GM", "A_KA", "A_ZS", "GM_mean", "A_KA_mean", "A_ZS_mean", "A_ZS_lowest", "forgetting")


def _lowest_zero_shot(run: RunResult) -> float:
    after_tasks = [record["A_ZS"] for record in run.records if record["task"] >= 0]
    return min(after_tasks) if after_tasks else float("nan")


def _summary_value(*path: str) -> Callable[[RunResult], float]:
    def value(run: RunResult) -> float:
        node: Any = run.summary
        for part in path:
            node = node[part]
        return float(node) if node is not None else float("nan")

    return value


GROUP_VALUES: dict[str, Callable[[RunResult], float]] = {
    **{key: _summary_value(key, "final") for key in ("GM", "A_KA", "A_ZS")},
    **{f"{key}_mean": _summary_value(key, "mean") for key in ("GM", "A_KA", "A_ZS")},
    "A_ZS_lowest": _lowest_zero_shot,
    "forgetting": _summary_value("forgetting", "adaptation_mean"),
}
"""The value of one run behind each statistic of :data:`STAT_KEYS`."""


def group_rows(groups: list[RunGroup]) -> list[dict[str, Any]]:
    """One row per group, best mean final GM first; the statistics are :class:`Stat` values (mean, std, n)."""
    rows = []
    for group in groups:
        seeds = len(group.runs)
        row: dict[str, Any] = {
            "point": group.label,
            "n": str(seeds) if seeds == group.planned else f"{seeds}/{group.planned}",
            "seeds": group.seeds,
            "planned": group.planned,
            "statuses": group.statuses,
            "overrides": group.overrides,
            "steps_per_task": group.runs[0].budget.get("steps_per_task") if group.runs else None,
            "run_dirs": [str(run.run_dir) for run in group.runs],
        }
        row.update({key: group.stat(extract) for key, extract in GROUP_VALUES.items()})
        rows.append(row)
    rows.sort(key=lambda row: -row["GM"].mean if not math.isnan(row["GM"].mean) else math.inf)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


DIFFERENCE_COLUMNS: list[tuple[str, str, str]] = [
    ("point", "point", "s"),
    ("n", "paired seeds", "d"),
    ("GM", "Δ final GM", "+.3f"),
    ("A_KA", "Δ final A_KA", "+.3f"),
    ("A_ZS", "Δ final A_ZS", "+.3f"),
    ("GM_mean", "Δ mean GM", "+.3f"),
    ("A_KA_mean", "Δ mean A_KA", "+.3f"),
    ("A_ZS_mean", "Δ mean A_ZS", "+.3f"),
    ("A_ZS_lowest", "Δ lowest A_ZS", "+.3f"),
    ("forgetting", "Δ forgetting", "+.3f"),
]
"""Each point against a reference point, seed by seed: mean ± standard deviation of the differences, ``*`` where
a paired t-test (two-sided, 5%, corrected for the number of comparisons: every column of every row, each one
shown) finds the difference larger than the seeds' spread."""


def difference_rows(groups: list[RunGroup], against: str, correction: str = "holm") -> list[dict[str, Any]]:
    """One row per point other than ``against``, in the order of :func:`group_rows`; values are :class:`Difference`,
    their p-values adjusted with ``correction`` over every test in the table (every point and every column)."""
    reference = next((group for group in groups if group.label == against), None)
    if reference is None:
        points = ", ".join(repr(group.label) for group in groups)
        raise FomoError(f"--against {against!r} is not a point of the study (points: {points})")
    if not reference.runs:
        raise FomoError(f"--against {against!r}: the point has no finished run yet")
    order = [row["point"] for row in group_rows(groups)]
    rows = []
    for group in sorted(groups, key=lambda group: order.index(group.label)):
        if group is reference:
            continue
        row: dict[str, Any] = {"point": group.label}
        for key, value in GROUP_VALUES.items():
            row[key] = Difference.paired(group.by_seed(value), reference.by_seed(value))
        row["n"] = max(difference.n for difference in row.values() if isinstance(difference, Difference))
        rows.append(row)
    tests = [(row, key) for row in rows for key in GROUP_VALUES if row[key].p is not None]
    adjusted = adjust_p_values([row[key].p for row, key in tests], correction)
    for (row, key), p_adjusted in zip(tests, adjusted, strict=True):
        row[key] = row[key].corrected(p_adjusted)
    return rows


def count_tests(rows: list[dict[str, Any]]) -> int:
    """The comparisons of a difference table that have a p-value (two or more paired seeds)."""
    return sum(1 for row in rows for value in row.values() if isinstance(value, Difference) and value.p is not None)


def format_difference(value: Any, style: str) -> str:
    """``+0.045 ± 0.007 *`` (mean ± standard deviation of the paired differences, ``*`` where shown), ``-`` for none."""
    if not isinstance(value, Difference):
        return format_cell(value, style)
    if value.n == 0:
        return "-"
    text = format(value.mean, style) + (f" ± {format(value.std, style.lstrip('+'))}" if value.std is not None else "")
    return text + (" *" if value.shown else "")


def format_stat(value: Any, style: str) -> str:
    """``0.554 ± 0.012`` (mean ± standard deviation over seeds), the mean alone for one seed, ``-`` for none."""
    if not isinstance(value, Stat):
        return format_cell(value, style)
    if value.n == 0:
        return "-"
    return format(value.mean, style) + (f" ± {format(value.std, style)}" if value.std is not None else "")


def markdown_table(headings: list[str], rows: list[list[str]], left: set[int]) -> str:
    """A GitHub markdown table (columns not in ``left`` right-aligned), as a README or a docs page holds it."""
    align = ["---" if i in left else "---:" for i in range(len(headings))]
    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
