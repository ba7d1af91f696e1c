"""One self-contained HTML page: the comparison table, the figures (embedded as base64 PNG) and each run's details."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from ..version import __version__
from .groups import RunGroup
from .runs import RunResult
from .tables import COLUMNS, GROUP_COLUMNS, comparison_rows, format_cell, format_stat, group_rows

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1240px; color: #222; padding: 0 12px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.78em; margin: 0.6em 0; }
th, td { padding: 0.25em 0.45em; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; white-space: normal; vertical-align: bottom; }
td.text, th.text { text-align: left; } td.text { white-space: normal; overflow-wrap: anywhere; max-width: 18em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 0.85em; } .incomplete { color: #a55; }
"""
"""Fits a 1280-px window: headings wrap, text cells wrap within 18em, numbers stay on one line (a wider table scrolls
inside its own box rather than widening the page)."""

TEXT_COLUMNS = {"run", "method", "tasks"}


def image_tag(path: Path, alt: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def table(headings: list[str], rows: list[list[str]], text_columns: AbstractSet[int] = frozenset({0})) -> str:
    head = "".join(f'<th class="{"text" if i in text_columns else ""}">{html.escape(h)}</th>' for i, h in enumerate(headings))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"text" if i in text_columns else ""}">{html.escape(cell)}</td>' for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def number(value: Any, style: str = ".4f") -> str:
    return format_cell(value, style)


def comparison_table(runs: list[RunResult]) -> str:
    rows = comparison_rows(runs)
    cells = [[format_cell(row[key], style) for key, _, style in COLUMNS] for row in rows]
    text = {i for i, (key, _, _) in enumerate(COLUMNS) if key in TEXT_COLUMNS}
    return table([heading for _, heading, _ in COLUMNS], cells, text)


SETTINGS_HEADINGS = {
    "method": "method",
    "merger": "merger",
    "lr": "lr",
    "schedule": "schedule",
    "mixture": "mixture (pool/task/buffer)",
    "budget": "budget",
    "seed": "seed",
}


def cell_text(value: Any, style: str = "") -> str:
    if value is None or value == "":
        return "-"
    return format(value, style) if style else str(value)


def settings_table(runs: list[RunResult]) -> str:
    """What each run was: method, merger, learning rate, schedule, mixture, budget and seed, from its spec."""
    rows = []
    for run in runs:
        settings = run.settings
        cells = [cell_text(settings[key], ".3g" if key == "lr" else "") for key in SETTINGS_HEADINGS]
        rows.append([run.label, *cells])
    text = {0, 1, 2, 4, 5, 6}
    return table(["run", *SETTINGS_HEADINGS.values()], rows, text)


def group_table(groups: list[RunGroup]) -> str:
    rows = group_rows(groups)
    cells = [[format_stat(row[key], style) for key, _, style in GROUP_COLUMNS] for row in rows]
    return table([heading for _, heading, _ in GROUP_COLUMNS], cells, {1})


def group_section(group: RunGroup, mean: RunResult, heatmap: Path | None) -> str:
    """A study point: what sets it apart, its seeds' runs with their final values, and the heatmap of the mean scores."""
    parts = [f"<h3>{html.escape(group.label)}</h3>"]
    overrides = " ".join(group.overrides) or "(the base spec)"
    unfinished = group.planned - len(group.runs)
    status = f' <span class="incomplete">({unfinished} of {group.planned} runs not finished: left out)</span>' if unfinished else ""
    parts.append(
        f'<p class="note">overrides: <code>{html.escape(overrides)}</code>; method {html.escape(mean.method)}, merger '
        f"{html.escape(mean.merger)}; mean over {len(group.runs)} seed(s){status}</p>"
    )
    rows = [
        [
            str(seed),
            str(run.run_dir),
            number(run.summary["GM"]["final"]),
            number(run.summary["A_KA"]["final"]),
            number(run.summary["A_ZS"]["final"]),
        ]
        for seed, run in zip(group.seeds, group.runs, strict=True)
    ]
    parts.append(table(["seed", "run directory", "final GM", "final A_KA", "final A_ZS"], rows, {1}))
    if heatmap is not None:
        parts.append(image_tag(heatmap, f"mean per-dataset scores of {group.label}"))
    return "\n".join(parts)


def run_section(run: RunResult, heatmap: Path | None) -> str:
    summary, budget = run.summary, run.budget
    parts = [f"<h3>{html.escape(run.label)}</h3>"]
    status = "" if run.complete else ' <span class="incomplete">(in progress or interrupted: no summary.json yet)</span>'
    parts.append(
        f'<p class="note">{html.escape(str(run.run_dir))}: method {html.escape(run.method)}, merger {html.escape(run.merger)}, '
        f"{summary['tasks_done']}/{run.num_tasks} tasks, {summary['samples_seen']:,} samples seen{status}</p>"
    )
    if budget:
        headings = [
            "budget given as",
            "steps/task",
            "samples/task",
            "GFLOPs/step",
            "end-of-task GFLOPs",
            "memory multiplier",
            "memory measure",
            "MAF/step",
            "MAF/task",
        ]
        cells = [
            budget["given"],
            f"{budget['steps_per_task']:,}",
            f"{budget['samples_per_task']:,}",
            number(budget["step_gflops"], ",.2f"),
            number(budget["end_task_gflops"], ",.2f"),
            number(budget["memory_multiplier"], ".3f"),
            budget["memory_measure"],
            number(budget["maf_per_step"], ",.2f"),
            number(budget["maf_per_task"], ",.4g"),
        ]
        parts.append(table(headings, [cells]))
    groups = summary["datasets"]
    names = [n for n in groups["adaptation"] + groups["zero_shot"] if n in summary["final_scores"]]
    names += [n for n in summary["final_scores"] if n not in names]
    base_scores = run.records[0]["scores"]
    forgetting = summary["forgetting"]["per_dataset"]
    zero_shot_drop = summary.get("zero_shot_drop", {}).get("per_dataset", {})
    transfer = summary["backward_transfer"]["per_dataset"]
    rows = []
    for name in names:
        scores = summary["trajectories"]["scores"][name]
        group = "adaptation" if name in groups["adaptation"] else "zero-shot" if name in groups["zero_shot"] else "-"
        rows.append(
            [
                name,
                group,
                number(base_scores.get(name)),
                number(summary["final_scores"][name]),
                number(max(scores)),
                number(forgetting.get(name)),
                number(zero_shot_drop.get(name), "+.4f"),
                number(transfer.get(name), "+.4f"),
            ]
        )
    parts.append(table(["dataset", "set", "base", "final", "best", "forgetting", "drop from base", "BWT"], rows, {0, 1}))
    if heatmap is not None:
        parts.append(image_tag(heatmap, f"per-dataset scores of {run.label}"))
    return "\n".join(parts)


def write_page(
    runs: list[RunResult],
    figures: dict[str, Path],
    heatmaps: dict[str, Path],
    notes: list[str],
    path: Path,
    heatmap_scale: tuple[float, float] | None = None,
    groups: list[RunGroup] | None = None,
) -> None:
    """The report page, with every figure embedded so the file can be mailed or archived alone.

    With ``groups`` (a study), ``runs`` are the groups' mean runs: the table shows mean ± standard deviation over seeds.
    """
    if groups is not None:
        sections = [
            "<h2>Comparison of the study's points</h2>",
            '<p class="note">Mean ± sample standard deviation over each point\'s finished seeds, ranked by mean final GM. '
            '"mean": over the evaluations after each task, the base model excluded; lowest A_ZS: after any task; forgetting '
            "(Chaudhry et al. 2018): best score since the task that first trained a dataset, before the final one, minus the "
            "final score, mean over adaptation sets. The figures show each point's mean trajectory with ± one standard "
            "deviation (bands, error bars).</p>",
            group_table(groups),
            "<h2>Settings</h2>",
            settings_table(runs),
        ]
    else:
        sections = [
            "<h2>Comparison</h2>",
            '<p class="note">Ranked by final GM = sqrt(A_KA x A_ZS). "mean": over the evaluations after each task, the base '
            'model excluded; "auc": trapezoidal area under the trajectory from the base model (task -1, included) to the last '
            "task, divided by the number of tasks; ΔA_KA / ΔA_ZS: change from the base model (the stability-plasticity plane); "
            "forgetting (Chaudhry et al. 2018): best score since the task that first trained a dataset, before the final one, "
            "minus the final score, mean over adaptation sets first trained before the final task; drop from base: base score "
            "minus final score of a zero-shot set; BWT: final score minus the score right after a dataset was last trained, "
            "mean over adaptation sets not trained in the final task.</p>",
            comparison_table(runs),
            "<h2>Settings</h2>",
            settings_table(runs),
        ]
    captions = {
        "plane": "A_KA vs A_ZS: the path of each run through the stability-plasticity plane",
        "trajectories": "A_KA, A_ZS and GM after each task",
        "schedule": "Learning-rate schedules",
    }
    for key, caption in captions.items():
        if key in figures:
            sections += [f"<h2>{html.escape(caption)}</h2>", image_tag(figures[key], caption)]
    sections.append("<h2>Points</h2>" if groups is not None else "<h2>Runs</h2>")
    if heatmap_scale is not None and len(runs) > 1:
        low, high = heatmap_scale
        sections.append(
            f'<p class="note">The heatmaps share one colour scale, {low:.2f} to {high:.2f}; an orange box marks the task that '
            "trained on a dataset.</p>"
        )
    if groups is not None:
        sections += [group_section(group, mean, heatmaps.get(mean.label)) for group, mean in zip(groups, runs, strict=True)]
    else:
        sections += [run_section(run, heatmaps.get(run.label)) for run in runs]
    if notes:
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")
    title = "fomo-host report: " + ", ".join(run.label for run in runs)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        f'<p class="note">fomo-host {__version__}, {stamp}; {len(runs)} run(s).</p>\n' + "\n".join(sections) + "\n</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
