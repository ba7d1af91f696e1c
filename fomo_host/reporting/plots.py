"""The report's figures (matplotlib, Agg backend): trajectories, the A_KA-A_ZS plane, per-dataset heatmaps, the lr schedule."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import FomoError
from .runs import RunResult

DPI = 110


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise FomoError("reports need matplotlib; install it with: pip install matplotlib") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as module

    return module


VECTOR_FORMATS = (".pdf", ".svg")
"""Written beside every PNG: vector figures for papers (fonts as text in SVG, embedded in PDF)."""


@contextmanager
def figure(path: Path, **options: Any) -> Iterator[tuple[Any, Any]]:
    """A figure saved to ``path`` (PNG) and beside it as PDF and SVG, and closed, when the block ends."""
    plt = pyplot()
    fig, axes = plt.subplots(**options)
    try:
        yield fig, axes
        fig.savefig(path, dpi=DPI)
        for suffix in VECTOR_FORMATS:
            fig.savefig(path.with_suffix(suffix), metadata=VECTOR_METADATA[suffix])
    finally:
        plt.close(fig)


VECTOR_METADATA: dict[str, dict[str, Any]] = {".pdf": {"Creator": "fomo-host report", "CreationDate": None}, ".svg": {"Date": None}}
"""No creation dates in vector files, so that drawing the same runs again gives the same bytes."""


def colours(runs: list[RunResult]) -> dict[str, Any]:
    """One colour per run, the same in every figure."""
    plt = pyplot()
    palette = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors
    return {run.label: palette[index % len(palette)] for index, run in enumerate(runs)}


def task_axis(axes: Any, num_tasks: int) -> None:
    """x: the base model, then after task 1 .. T (integer ticks, thinned for long streams)."""
    every = max(1, math.ceil((num_tasks + 1) / 12))
    ticks = list(range(0, num_tasks + 1, every))
    axes.set_xticks(ticks)
    axes.set_xticklabels(["base" if tick == 0 else str(tick) for tick in ticks])
    axes.set_xlim(-0.3, num_tasks + 0.3)
    axes.set_xlabel("tasks done")


def run_label(run: RunResult) -> str:
    """A run's legend entry: the label its spec (or a study) chose as it is; a directory name with its method."""
    if run.label == run.method or run.label == run.spec.get("run", {}).get("label"):
        return run.label
    return f"{run.label} ({run.method})"


Spread = dict[str, dict[str, list[float]]]
"""Per run label: the standard deviation over seeds of A_KA, A_ZS and GM at each evaluation (runs that are a group's mean)."""


def draw_trajectories(runs: list[RunResult], path: Path, spread: Spread | None = None) -> None:
    """A_KA, A_ZS and GM after each task, one line per run; with ``spread``, a band of ± one standard deviation over seeds."""
    palette = colours(runs)
    num_tasks = max(run.num_tasks for run in runs)
    with figure(path, ncols=3, figsize=(13, 4.2)) as (fig, axes):
        titles = {"A_KA": "knowledge accumulation A_KA", "A_ZS": "zero-shot retention A_ZS", "GM": "geometric mean GM"}
        for axis, key in zip(axes, ("A_KA", "A_ZS", "GM"), strict=True):
            for run in runs:
                trajectory = run.summary["trajectories"]
                x = [task + 1 for task in trajectory["task"]]
                axis.plot(x, trajectory[key], marker="o", markersize=3.5, linewidth=1.6, color=palette[run.label], label=run_label(run))
                if spread and run.label in spread:
                    low = [mean - std for mean, std in zip(trajectory[key], spread[run.label][key], strict=False)]
                    high = [mean + std for mean, std in zip(trajectory[key], spread[run.label][key], strict=False)]
                    axis.fill_between(x[: len(low)], low, high, color=palette[run.label], alpha=0.15, linewidth=0)
            axis.set_title(titles[key], fontsize=11)
            axis.set_ylabel(key)
            task_axis(axis, num_tasks)
            axis.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(runs), 4), frameon=False, fontsize=9)
        fig.suptitle("Trajectories over the stream", fontsize=12)
        fig.tight_layout(rect=(0, 0.04 + 0.04 * math.ceil(len(runs) / 4), 1, 1))


def base_points(runs: list[RunResult]) -> list[tuple[float, float]]:
    """Where the runs' base models sit on the (A_KA, A_ZS) plane: one point where they share a base (seeds of a
    study pool their base's scores in a mean run), one per base where they differ (a study over model sizes)."""
    return sorted({(run.summary["trajectories"]["A_KA"][0], run.summary["trajectories"]["A_ZS"][0]) for run in runs})


def draw_plane(runs: list[RunResult], path: Path, spread: Spread | None = None) -> None:
    """Every run's path through the (A_KA, A_ZS) plane: the base model, each task, the final point; GM isolines behind.

    With ``spread`` (runs that are a group's mean), each point carries error bars of ± one standard deviation over seeds.
    """
    palette = colours(runs)

    def extent(run: RunResult, key: str) -> list[float]:
        values = run.summary["trajectories"][key]
        if not spread or run.label not in spread:
            return values
        stds = spread[run.label][key]
        return [value + sign * std for value, std in zip(values, stds, strict=False) for sign in (-1, 1)]

    xs = [value for run in runs for value in extent(run, "A_KA") if not math.isnan(value)]
    ys = [value for run in runs for value in extent(run, "A_ZS") if not math.isnan(value)]
    if not xs or not ys:
        raise FomoError("the A_KA-A_ZS plot needs both adaptation and zero-shot datasets in the runs")
    pad_x, pad_y = max(0.02, 0.12 * (max(xs) - min(xs))), max(0.02, 0.12 * (max(ys) - min(ys)))
    x_range = (max(0.0, min(xs) - pad_x), min(1.0, max(xs) + pad_x))
    y_range = (max(0.0, min(ys) - pad_y), min(1.0, max(ys) + pad_y))
    beside = len(runs) > 5  # many runs: the legend goes right of the plane instead of over its points
    with figure(path, figsize=(9.4 if beside else 7.2, 6.2)) as (fig, axes):
        import numpy as np

        grid_x, grid_y = np.meshgrid(np.linspace(*x_range, 200), np.linspace(*y_range, 200))
        isolines = axes.contour(grid_x, grid_y, np.sqrt(grid_x * grid_y), levels=8, colors="0.75", linewidths=0.7, linestyles="--")
        axes.clabel(isolines, fmt="GM %.2f", fontsize=7, inline=True)
        for run in runs:
            trajectory = run.summary["trajectories"]
            x, y, colour = trajectory["A_KA"], trajectory["A_ZS"], palette[run.label]
            axes.plot(x, y, color=colour, linewidth=1.4, alpha=0.75, marker="o", markersize=3.5, label=run_label(run))
            if spread and run.label in spread:
                axes.errorbar(
                    x, y, xerr=spread[run.label]["A_KA"], yerr=spread[run.label]["A_ZS"], fmt="none", ecolor=colour, alpha=0.45, capsize=2
                )
            axes.plot(x[-1], y[-1], marker="*", markersize=14, color=colour, markeredgecolor="black", markeredgewidth=0.6, linestyle="none")
            if len(x) <= 13:  # number the tasks where they stay readable
                for task, (px, py) in enumerate(zip(x[1:], y[1:], strict=True), start=1):
                    axes.annotate(str(task), (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour)
        bases = base_points(runs)
        axes.plot(
            [x for x, _ in bases],
            [y for _, y in bases],
            marker="o",
            markersize=10,
            markerfacecolor="white",
            markeredgecolor="black",
            markeredgewidth=1.4,
            linestyle="none",
            label="base model" if len(bases) == 1 else f"{len(bases)} base models",
            zorder=5,
        )
        axes.set_xlim(*x_range)
        axes.set_ylim(*y_range)
        axes.set_xlabel("knowledge accumulation A_KA (adaptation sets)")
        axes.set_ylabel("zero-shot retention A_ZS (held-out sets)")
        axes.set_title("Stability-plasticity: each run from the base model (○) to its final model (★)", fontsize=10.5)
        axes.grid(alpha=0.25)
        if beside:
            axes.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        else:
            axes.legend(fontsize=8.5, loc="best", framealpha=0.9)
        fig.tight_layout()


def heatmap_scale(runs: list[RunResult]) -> tuple[float, float]:
    """One colour scale for every run's heatmap: from 0 to the best score any run reached on any dataset."""
    import numpy as np

    values = [value for run in runs for scores in run.summary["trajectories"]["scores"].values() for value in scores]
    finite = [value for value in values if not math.isnan(value)]
    return 0.0, max(1e-9, float(np.max(finite))) if finite else 1.0


def trained_cells(run: RunResult, datasets: list[str]) -> list[tuple[int, int]]:
    """(row, column) of the heatmap cells whose task trained on the row's dataset (from the records' ``task_datasets``)."""
    rows = {name: index for index, name in enumerate(datasets)}
    return [(rows[name], column) for column, record in enumerate(run.records) for name in record.get("task_datasets", {}) if name in rows]


def draw_heatmap(run: RunResult, path: Path, scale: tuple[float, float] | None = None) -> tuple[float, float]:
    """One run's score on every dataset after every task (adaptation sets above the line, zero-shot sets below); a box marks
    the tasks that trained on a dataset. ``scale`` (vmin, vmax) is shared by the heatmaps of runs shown together; returns
    the scale drawn with."""
    trajectory = run.summary["trajectories"]
    groups = run.summary["datasets"]
    ordered = [name for name in groups["adaptation"] + groups["zero_shot"] if name in trajectory["scores"]]
    ordered += [name for name in trajectory["scores"] if name not in ordered]
    values = [trajectory["scores"][name] for name in ordered]
    columns = ["base" if task < 0 else str(task + 1) for task in trajectory["task"]]
    width = min(16.0, max(7.5, 3.5 + 0.55 * len(columns)))
    height = min(14.0, 2.0 + 0.4 * len(ordered))
    vmin, vmax = scale or heatmap_scale([run])
    with figure(path, figsize=(width, height)) as (fig, axes):
        from matplotlib.patches import Rectangle

        image = axes.imshow(values, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        axes.set_xticks(range(len(columns)))
        axes.set_xticklabels(columns)
        axes.set_yticks(range(len(ordered)))
        axes.set_yticklabels(ordered, fontsize=8.5)
        axes.set_xlabel("tasks done")
        if len(columns) * len(ordered) <= 400:
            for i, row in enumerate(values):
                for j, value in enumerate(row):
                    if math.isnan(value):
                        continue
                    light = value < vmin + 0.6 * (vmax - vmin)
                    axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if light else "black")
        for row, column in trained_cells(run, ordered):
            # inset, so that the boxes of neighbouring cells stay apart
            axes.add_patch(Rectangle((column - 0.44, row - 0.42), 0.88, 0.84, fill=False, edgecolor="#ff7f0e", linewidth=2.0))
        adaptation = sum(1 for name in ordered if name in groups["adaptation"])
        if 0 < adaptation < len(ordered):
            axes.axhline(adaptation - 0.5, color="white", linewidth=2.5)
        bar = fig.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
        bar.set_label("score", fontsize=9)
        axes.set_title(
            f"{run_label(run)}: score per dataset (top-1 accuracy, recall@5 for retrieval)\n"
            "orange box: the task trained on the dataset; adaptation sets above the white line, zero-shot below",
            fontsize=9.5,
        )
        fig.tight_layout()
        drawn = image.get_clim()
    return float(drawn[0]), float(drawn[1])


LINE_STYLES = ("-", "--", "-.", ":")


def draw_schedules(schedules: dict[str, tuple[list[float], int]], runs: list[RunResult], path: Path) -> None:
    """The learning rate over each run's stream, against tasks done, so runs with different steps per task line up."""
    palette = colours(runs)
    num_tasks = max(math.ceil(len(rates) / steps) for rates, steps in schedules.values())
    with figure(path, figsize=(11, 3.8)) as (fig, axes):
        drawn = [run for run in runs if run.label in schedules]
        for index, run in enumerate(drawn):
            rates, steps = schedules[run.label]
            # global step g holds [g, g + 1) / steps on the task axis; identical schedules stay visible through their line styles
            x = [step / steps for step in range(len(rates) + 1)]
            axes.plot(
                x,
                [*rates, rates[-1]],
                linewidth=1.5 if index == 0 else 1.3,
                linestyle=LINE_STYLES[index % len(LINE_STYLES)],
                color=palette[run.label],
                label=f"{run_label(run)}: {steps:,} steps/task",
                drawstyle="steps-post",
            )
        for boundary in range(1, num_tasks):
            axes.axvline(boundary, color="0.6", linewidth=0.6, linestyle=":")
        axes.set_xlim(0, num_tasks)
        axes.set_xticks(range(num_tasks + 1))
        axes.set_xlabel("tasks done (each task's steps spread over its width)")
        axes.set_ylabel("learning rate")
        axes.set_ylim(bottom=0)
        axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        axes.set_title("Learning-rate schedule over the stream", fontsize=11)
        axes.grid(alpha=0.25)
        rows = math.ceil(len(drawn) / 3)
        fig.legend(*axes.get_legend_handles_labels(), loc="lower center", ncol=min(len(drawn), 3), frameon=False, fontsize=8.5)
        fig.set_size_inches(11, 3.8 + 0.25 * rows)
        fig.tight_layout(rect=(0, 0.01 + 0.05 * rows, 1, 1))
