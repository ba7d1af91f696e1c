"""The comparison of runs, ranked by GM, as rows that the terminal table, JSON and the HTML page share."""

from __future__ import annotations

import math
from typing import Any

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
