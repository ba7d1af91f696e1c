"""The comparison of runs, ranked by GM, as rows that the terminal table, JSON and the HTML page share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .groups import RunGroup, Stat
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


def group_rows(groups: list[RunGroup]) -> list[dict[str, Any]]:
    """One row per group, best mean final GM first; the statistics are :class:`Stat` values (mean, std, n)."""

    def summary_value(*path: str) -> Callable[[RunResult], float]:
        def value(run: RunResult) -> float:
            node: Any = run.summary
            for part in path:
                node = node[part]
            return float(node) if node is not None else float("nan")

        return value

    extractors: dict[str, Callable[[RunResult], float]] = {
        **{key: summary_value(key, "final") for key in ("GM", "A_KA", "A_ZS")},
        **{f"{key}_mean": summary_value(key, "mean") for key in ("GM", "A_KA", "A_ZS")},
        "A_ZS_lowest": _lowest_zero_shot,
        "forgetting": summary_value("forgetting", "adaptation_mean"),
    }
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
        row.update({key: group.stat(extract) for key, extract in extractors.items()})
        rows.append(row)
    rows.sort(key=lambda row: -row["GM"].mean if not math.isnan(row["GM"].mean) else math.inf)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def format_stat(value: Any, style: str) -> str:
    """``0.554 ± 0.012`` (mean ± standard deviation over seeds), the mean alone for one seed, ``-`` for none."""
    if not isinstance(value, Stat):
        return format_cell(value, style)
    if value.n == 0:
        return "-"
    return format(value.mean, style) + (f" ± {format(value.std, style)}" if value.std is not None else "")


def markdown_table(headings: list[str], rows: list[list[str]], left: set[int]) -> str:
    """A GitHub markdown table (columns not in ``left`` right-aligned), as a README holds it."""
    align = ["---" if i in left else "---:" for i in range(len(headings))]
    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
