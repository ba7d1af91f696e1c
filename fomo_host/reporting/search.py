"""A search study's results: its trials from the journal and the index, the best trial or Pareto front per variant, the
compute pruning saved, and the figures ``fomo-host report`` draws for it."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..results import RESULTS_FILE, SUMMARY_FILE
from ..study.index import StudyIndex, read_index


@dataclass
class TrialResult:
    variant: str | None
    number: int
    state: str
    """complete, pruned, fail or running (Optuna's state, lower case)."""
    params: dict[str, Any]
    values: list[float] | None
    """The objectives Optuna was told (None unless complete)."""
    tasks_reached: int | None
    num_tasks: int | None
    maf_run: float
    """MAF of the tasks its runs trained (all seeds)."""
    maf_saved: float
    """MAF of the tasks its runs did not train because the trial was pruned."""
    test: dict[str, float] = field(default_factory=dict)
    """Final A_KA, A_ZS and GM on the test split (mean over seeds; recorded for every trial, never used by the search)."""
    overrides: list[str] = field(default_factory=list)
    on_front: bool = False
    distributions: dict[str, Any] = field(default_factory=dict)
    """The range each of ``params`` was drawn from (Optuna's distributions)."""

    @property
    def confirm_label(self) -> str:
        return f"{self.variant + ' ' if self.variant else ''}trial {self.number}"

    def describe(self) -> str:
        return ", ".join(f"{key} = {value!r}" for key, value in self.params.items())


@dataclass
class SearchResults:
    study_dir: Path
    index: StudyIndex
    objectives: list[str]
    split: str
    trials: list[TrialResult]
    studies: dict[str | None, Any]

    def variants(self) -> list[str | None]:
        return list(self.studies)

    @property
    def pruned(self) -> list[TrialResult]:
        return [trial for trial in self.trials if trial.state == "pruned"]

    @property
    def maf_saved(self) -> float:
        return sum(trial.maf_saved for trial in self.trials)

    @property
    def maf_run(self) -> float:
        return sum(trial.maf_run for trial in self.trials)


def _records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_search(study_dir: Path) -> SearchResults:
    """Read a search study directory: the index, the journal and every trial run's records."""
    import optuna

    from ..search_journal import journal_storage, quiet_optuna
    from ..study.search import journal_path

    index = read_index(study_dir)
    if not index.study.get("search"):
        raise FomoError(f"{study_dir}: a grid study, not a search")
    record = index.study["search"]
    journal = journal_path(study_dir)
    if not journal.is_file():
        raise FomoError(f"{study_dir}: no search journal ({journal}); the sweep makes it when it starts")
    quiet_optuna()
    storage = journal_storage(journal)
    studies: dict[str | None, Any] = {}
    trials: list[TrialResult] = []
    for name, variant in record["variants"].items():
        study = optuna.load_study(study_name=name, storage=storage)
        label = variant["label"]
        studies[label] = study
        front = set()
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if complete:
            front = {t.number for t in (study.best_trials if len(study.directions) > 1 else [study.best_trial])}
        for frozen in study.trials:
            runs = [run for run in index.runs if run.variant == label and run.trial == frozen.number]
            trials.append(trial_result(index, label, frozen, runs, frozen.number in front))
    return SearchResults(Path(study_dir), index, list(record["objectives"]), record["split"], trials, studies)


def trial_result(index: StudyIndex, label: str | None, frozen: Any, runs: list[Any], on_front: bool) -> TrialResult:
    maf_run = maf_saved = 0.0
    reached: list[int] = []
    num_tasks = None
    tests: dict[str, list[float]] = {}
    for run in runs:
        path = index.run_path(run)
        records = [r for r in _records(path) if r.get("task", -1) >= 0]
        if records:
            per_task = float(records[-1].get("budget", {}).get("maf_per_task") or 0.0)
            done = records[-1]["task"] + 1
            reached.append(done)
            maf_run += per_task * done
            spec_tasks = _num_tasks(path)
            if spec_tasks is not None:
                num_tasks = spec_tasks
                if run.status == "pruned":
                    maf_saved += per_task * (spec_tasks - done)
        summary_path = path / SUMMARY_FILE
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            for key in ("A_KA", "A_ZS", "GM"):
                tests.setdefault(key, []).append(float(summary[key]["final"]))
    state = frozen.state.name.lower()
    if state == "running" and runs:
        # the sweep tells Optuna at the end of each round: a trial whose runs have all ended says so meanwhile
        statuses = {run.status for run in runs}
        if "pruned" in statuses and statuses <= {"pruned", "finished"}:
            state = "pruned"
        elif statuses == {"finished"}:
            state = "finished"  # not told to the search yet: its value counts from the round's end
    return TrialResult(
        variant=label,
        number=frozen.number,
        state=state,
        params=dict(frozen.params),
        values=list(frozen.values) if frozen.values is not None and state == "complete" else None,
        tasks_reached=min(reached) if reached else None,
        num_tasks=num_tasks,
        maf_run=maf_run,
        maf_saved=maf_saved,
        test={key: sum(values) / len(values) for key, values in tests.items()},
        overrides=list(runs[0].overrides) if runs else [],
        on_front=on_front,
        distributions=dict(frozen.distributions),
    )


def _num_tasks(run_dir: Path) -> int | None:
    import tomllib

    spec = run_dir / "spec.toml"
    if not spec.is_file():
        return None
    return int(tomllib.loads(spec.read_text(encoding="utf-8")).get("data", {}).get("num_tasks", 0)) or None


def chosen_trials(search: SearchResults, count: int) -> list[TrialResult]:
    """The ``count`` best complete trials of each variant (one objective), or up to ``count`` points of its front (several)."""
    chosen = []
    for variant, study in search.studies.items():
        complete = [t for t in search.trials if t.variant == variant and t.state == "complete" and t.values is not None]
        if len(study.directions) > 1:
            front = sorted((t for t in complete if t.on_front), key=lambda t: t.number)
            chosen += front[:count]
        else:
            sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
            chosen += sorted(complete, key=lambda t: (sign * (t.values or [math.nan])[0], t.number))[:count]
    return chosen


EDGE_SHARE = 0.05
"""A best value within this share of its searched range's end (on the scale it was sampled on) is at the edge."""


def range_edge(value: Any, distribution: Any) -> str | None:
    """``"top"`` or ``"bottom"`` where ``value`` lies within ``EDGE_SHARE`` of that end of a numeric search range."""
    low, high = getattr(distribution, "low", None), getattr(distribution, "high", None)
    if low is None or high is None or high <= low or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    scale = math.log if getattr(distribution, "log", False) else float
    position = (scale(value) - scale(low)) / (scale(high) - scale(low))
    return "top" if position >= 1.0 - EDGE_SHARE else "bottom" if position <= EDGE_SHARE else None


def range_edges(search: SearchResults) -> list[str]:
    """A line for each searched value of a best trial (or a front's) at the edge of its range: the optimum may lie beyond it."""
    lines = []
    for trial in search.trials:
        if not trial.on_front:
            continue
        for name, distribution in trial.distributions.items():
            value = trial.params[name]
            edge = range_edge(value, distribution)
            if edge is not None:
                scale = ", log scale" if getattr(distribution, "log", False) else ""
                lines.append(
                    f"{trial.variant + ' ' if trial.variant else ''}trial {trial.number}: {name} = {_short(value)} is at the {edge} of "
                    f"its searched range [{_short(distribution.low)}, {_short(distribution.high)}]{scale}; the best may lie beyond it: "
                    "widen the range where the knob allows and search again"
                )
    return lines


def dominates(first: list[float], second: list[float], maximise: list[bool]) -> bool:
    """Whether ``first`` is at least as good as ``second`` in every objective and better in one."""
    better = [a > b if up else a < b for a, b, up in zip(first, second, maximise, strict=True)]
    no_worse = [a >= b if up else a <= b for a, b, up in zip(first, second, maximise, strict=True)]
    return all(no_worse) and any(better)


# ----------------------------------------------------------------------------- tables


def trial_rows(search: SearchResults) -> list[dict[str, Any]]:
    rows = []
    for trial in search.trials:
        row: dict[str, Any] = {
            "variant": trial.variant,
            "trial": trial.number,
            "state": trial.state,
            "best": trial.on_front,
            "params": trial.params,
            "tasks": f"{trial.tasks_reached}/{trial.num_tasks}" if trial.tasks_reached is not None else "-",
        }
        for position, objective in enumerate(search.objectives):
            row[objective] = trial.values[position] if trial.values is not None else None
        for key, value in trial.test.items():
            row[f"test {key}"] = value
        rows.append(row)
    return rows


def print_search_comparison(search: SearchResults, as_json: bool, markdown: bool, best_only: bool = False) -> None:
    """Every trial (or, ``best_only``, each variant's best trial or front with how many trials it was chosen from)."""
    rows = trial_rows(search)
    if best_only:

        def tally(variant: str | None) -> str:
            states = [t.state for t in search.trials if t.variant == variant]
            shown = [f"{states.count(state)} {state}" for state in ("complete", "pruned", "finished", "running", "fail") if state in states]
            return ", ".join(shown)

        rows = [{**row, "trials": tally(row["variant"])} for row in rows if row["best"]]
    several = len(search.objectives) > 1
    summary = {
        "trials": len(search.trials),
        "complete": sum(1 for t in search.trials if t.state == "complete"),
        "pruned": len(search.pruned),
        "failed": sum(1 for t in search.trials if t.state == "fail"),
        "maf_run": search.maf_run,
        "maf_saved": search.maf_saved,
        "saved_fraction": search.maf_saved / (search.maf_run + search.maf_saved) if search.maf_run + search.maf_saved else 0.0,
    }
    edges = range_edges(search)
    if as_json:
        print(json.dumps({"summary": {**summary, "at_range_edge": edges}, "trials": rows}, indent=2, default=str))
        return
    columns = ["variant", "trial", "state", "tasks", "params", *search.objectives, "test A_KA", "test A_ZS", "front" if several else "best"]
    if best_only:
        columns = ["variant", "trial", "params", *search.objectives, "test A_KA", "test A_ZS", "trials"]

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get("best" if column in ("front", "best") else column)
        if column in ("front", "best"):
            return "*" if value else ""
        if column == "params":
            return ", ".join(f"{key.split('.')[-1]}={_short(v)}" for key, v in (value or {}).items())
        if isinstance(value, float):
            return f"{value:.4f}"
        return "-" if value is None else str(value)

    table = [[cell(row, column) for column in columns] for row in rows]
    if markdown:
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for line in table:
            print("| " + " | ".join(line) + " |")
    else:
        import sys

        from rich.console import Console
        from rich.table import Table

        grid = Table(title=f"search {search.study_dir} ({search.split} split)", title_justify="left")
        for column in columns:
            grid.add_column(column, overflow="fold")
        for line in table:
            grid.add_row(*line)
        Console(width=None if sys.stdout.isatty() else 220).print(grid)
    kind = "Pareto front" if several else "best trial"
    for variant in search.variants():
        chosen = [t for t in search.trials if t.variant == variant and t.on_front]
        shown = "; ".join(f"#{t.number} ({t.describe()})" for t in chosen) or "none complete yet"
        print(f"{kind}{' of ' + variant if variant else ''}: {shown}")
    for edge in edges:
        print(f"at the edge: {edge}")
    print(
        f"{summary['pruned']} of {summary['trials']} trials pruned; compute saved: {summary['maf_saved']:,.1f} MAF of tasks not run "
        f"({100 * summary['saved_fraction']:.1f}% of what the trials would have used unpruned)"
    )


def _short(value: Any) -> str:
    return format(value, ".3g") if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- figures


def draw_search(search: SearchResults, out: Path) -> list[Path]:
    """The trials on the A_KA-A_ZS plane (front highlighted), and Optuna's optimisation history and parameter importances per
    variant; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    figure, axes = plt.subplots(figsize=(6.5, 5))
    plane = _plane(search)
    markers = "osD^vP*X"
    for position, variant in enumerate(search.variants()):
        points = [(trial, plane[id(trial)]) for trial in search.trials if trial.variant == variant and id(trial) in plane]
        if not points:
            continue
        marker = markers[position % len(markers)]
        label = variant or "trials"
        axes.scatter([p[1][0] for p in points], [p[1][1] for p in points], marker=marker, alpha=0.45, label=f"{label}")
        front = sorted((p for p in points if p[0].on_front), key=lambda p: p[1][0])
        if front:
            axes.scatter([p[1][0] for p in front], [p[1][1] for p in front], marker=marker, s=90, edgecolors="black", linewidths=1.2)
            axes.plot([p[1][0] for p in front], [p[1][1] for p in front], linewidth=1, alpha=0.7)
    axes.set_xlabel(f"A_KA ({search.split} split, final)")
    axes.set_ylabel(f"A_ZS ({search.split} split, final)")
    axes.set_title("trials on the A_KA-A_ZS plane (outlined: best or front; pruned: at the task they reached)")
    axes.title.set_fontsize(9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = out / "search-plane.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    written.append(path)
    written += _optuna_figures(search, out)
    return written


def _plane(search: SearchResults) -> dict[int, tuple[float, float]]:
    """Each trial's (A_KA, A_ZS) on the search's split, from its first seed's last record (a pruned trial where it stopped)."""
    from ..engine.trial import split_records

    points = {}
    for trial in search.trials:
        runs = [run for run in search.index.runs if run.variant == trial.variant and run.trial == trial.number]
        if not runs:
            continue
        records = split_records(_records(search.index.run_path(runs[0])), search.split)
        if records and records[-1]["task"] >= 0:
            last = records[-1]
            if all(isinstance(last.get(key), float) and math.isfinite(last[key]) for key in ("A_KA", "A_ZS")):
                points[id(trial)] = (float(last["A_KA"]), float(last["A_ZS"]))
    return points


def _optuna_figures(search: SearchResults, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    from ..study.points import slug as slug_name

    written = []
    for variant, study in search.studies.items():
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            continue
        name = slug_name(variant or "search")
        for position, objective in enumerate(search.objectives):
            target = (lambda t, i=position: t.values[i]) if len(search.objectives) > 1 else None
            drawings: list[tuple[str, Any]] = [("history", optuna_plots.plot_optimization_history)]
            if len(complete) >= 2 and len(complete[0].params) >= 1:
                drawings.append(("importances", optuna_plots.plot_param_importances))
            for kind, draw in drawings:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        if target is not None:
                            draw(study, target=target, target_name=objective)
                        else:
                            draw(study, target_name=objective)
                except (ValueError, RuntimeError, ZeroDivisionError):
                    continue  # too few trials for importances: the figure is left out, the others are drawn
                figure = plt.gcf()
                figure.set_size_inches(6.5, 4.5)
                figure.tight_layout()
                path = out / f"search-{kind}-{name}-{slug_name(objective)}.png"
                figure.savefig(path, dpi=110)
                plt.close(figure)
                written.append(path)
    return written


def write_search_page(search: SearchResults, figures: list[Path], page: Path) -> None:
    """A plain HTML page with the search's figures and its trials table."""
    import html

    rows = trial_rows(search)
    columns = ["variant", "trial", "state", "tasks", *search.objectives]
    body = [f"<h1>search {html.escape(str(search.study_dir))}</h1>"]
    body.append(
        f"<p>objectives {html.escape(', '.join(search.objectives))} on the {search.split} split; "
        f"{len(search.pruned)} of {len(search.trials)} trials pruned, {search.maf_saved:,.1f} MAF saved</p>"
    )
    body += [f'<img src="{html.escape(path.name)}" alt="{html.escape(path.stem)}">' for path in figures]
    body.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in [*columns, "params"]) + "</tr>")
    for row in rows:
        cells = [row.get(c) for c in columns] + [", ".join(f"{k} = {v!r}" for k, v in row["params"].items())]
        body.append("<tr>" + "".join(f"<td>{html.escape(f'{c:.4f}' if isinstance(c, float) else str(c))}</td>" for c in cells) + "</tr>")
    body.append("</table>")
    page.write_text("<!doctype html><meta charset='utf-8'><title>search</title>\n" + "\n".join(body) + "\n", encoding="utf-8")
