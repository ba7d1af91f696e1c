"""``fomo-host report`` and ``fomo-host compare`` on hand-made run directories, and once on real tiny runs."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.reporting.runs import load_runs
from fomo_host.reporting.tables import comparison_rows

SPEC = """
[run]
name = "{name}"
batch_size = 8
[model]
name = "tiny-clip"
[[data.sources]]
name = "synthetic"
[data]
num_tasks = {num_tasks}
[budget]
maf_per_task = 100.0
[method]
name = "{method}"
[scheduler]
name = "cosine"
params = {{ warmup = 0.25 }}
"""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(
    directory: Path,
    method: str,
    a_ka: list[float],
    a_zs: list[float] | None,
    steps: int,
    finished: bool = True,
    num_tasks: int | None = None,
) -> Path:
    """A run directory as the engine writes it: spec.toml, results.jsonl (base model + one line per task), summary.json."""
    directory.mkdir(parents=True)
    num_tasks = num_tasks or len(a_ka) - 1
    (directory / "spec.toml").write_text(SPEC.format(name=directory.name, num_tasks=num_tasks, method=method), encoding="utf-8")
    budget = {
        "given": "maf_per_task",
        "steps_per_task": steps,
        "samples_per_task": 8 * steps,
        "maf_per_task": 99.0,
        "gflops_per_step": 1.0,
        "maf_per_step": 99.0 / steps,
        "step_gflops": 1.0,
        "end_task_gflops": 0.0,
        "memory_multiplier": 99.0 / steps,
        "memory_measure": "analytic",
        "batch_size": 8,
    }
    lines = []
    for index, ka in enumerate(a_ka):
        task = index - 1
        zs = a_zs[index] if a_zs is not None else math.nan
        record = {
            "task": task,
            "step": index * steps,
            "samples_seen": index * steps * 8,
            "subset_fraction": 1.0,
            "scores": {"letters": ka - 0.05, "arrows": ka + 0.05, **({"shapes": zs} if a_zs is not None else {})},
            "metrics": {},
            "A_KA": ka,
            "A_ZS": zs,
            "GM": math.sqrt(ka * zs),
            "budget": budget,
            "groups": {"adaptation": ["letters", "arrows"], "zero_shot": ["shapes"] if a_zs is not None else []},
        }
        if task >= 0:
            record["task_datasets"] = {"letters" if task % 2 else "arrows": 2}
        lines.append(json.dumps(record))
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if finished:
        summary = {"run": {"name": directory.name, "num_tasks": num_tasks, "steps_per_task": steps}}
        (directory / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return directory


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [
        make_run(tmp_path / "steady", "finetune", [0.30, 0.40, 0.45, 0.50], [0.60, 0.58, 0.57, 0.56], steps=10),
        make_run(tmp_path / "eager", "lora", [0.30, 0.50, 0.55, 0.60], [0.60, 0.45, 0.40, 0.35], steps=24),
        make_run(tmp_path / "halfway", "ewc", [0.30, 0.33], [0.60, 0.60], steps=4, finished=False, num_tasks=3),
    ]


def test_compare_ranks_runs_by_final_gm(runs, capsys):
    assert main(["compare", *map(str, runs), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["run"] for row in rows] == ["steady", "eager", "halfway"]  # final GM 0.529, 0.458, 0.445
    steady = rows[0]
    assert steady["GM"] == pytest.approx(math.sqrt(0.5 * 0.56))
    assert steady["A_KA_mean"] == pytest.approx((0.40 + 0.45 + 0.50) / 3)
    assert steady["delta_A_ZS"] == pytest.approx(-0.04)
    assert steady["steps_per_task"] == 10 and steady["tasks"] == "3/3"
    assert rows[2]["tasks"] == "1/3" and rows[2]["complete"] is False
    assert main(["compare", *map(str, runs)]) == 0
    table = capsys.readouterr().out
    assert "steady" in table and "ranked by final GM" in table


def test_report_writes_plots_and_one_self_contained_page(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    expected = ["trajectories.png", "plane.png", "schedule.png", "heatmap-steady.png", "heatmap-eager.png", "heatmap-halfway.png"]
    for name in expected:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
        # vector copies for papers, beside every PNG
        assert (out / name).with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", name
        assert b"<svg" in (out / name).with_suffix(".svg").read_bytes()[:2000], name
    page = (out / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(expected)
    assert all(base64.b64decode(image)[:8] == PNG_MAGIC for image in images)
    assert 'src="http' not in page and "<link" not in page  # nothing to fetch
    for label in ("steady", "eager", "halfway"):
        assert label in page
    assert "in progress or interrupted" in page  # the run without summary.json
    # each run's settings, from its spec with the defaults filled in
    settings = page[page.index("<h2>Settings</h2>") : page.index("</table>", page.index("<h2>Settings</h2>"))]
    for cell in (">lora<", ">cosine (warmup=0.25)<", ">0.33/0.34/0.33<", ">maf_per_task=100<", ">1e-05<", ">0<"):
        assert cell in settings, cell
    assert "The heatmaps share one colour scale, 0.00 to 0.65" in page
    # fits a 1280-px window (measured once in a browser): a bounded page, headings and text cells that wrap,
    # and any wider table scrolling in its own box
    assert "max-width: 1240px" in page and "th { background: #f4f4f4; white-space: normal;" in page
    assert page.count('<div class="table"><table>') == page.count("<table>")
    # ranked table first: steady (best GM) before eager
    assert page.index(">steady<") < page.index(">eager<")


def test_the_schedule_follows_the_steps_each_run_trained(runs):
    from fomo_host.plugins import load_plugins
    from fomo_host.reporting.schedules import run_schedule

    steady, eager, _ = load_runs(runs)
    rates, steps = run_schedule(eager, load_plugins())
    assert steps == 24 and len(rates) == 24 * 3
    # cosine with a 25% warmup: the peak (lr 1e-5, the optimizer default) at the end of the warmup of every task
    assert max(rates) == pytest.approx(1e-5)
    assert rates[5] == pytest.approx(1e-5) and rates[24 + 5] == pytest.approx(1e-5)
    assert run_schedule(steady, load_plugins())[1] == 10


def test_labels_stay_unique(tmp_path):
    first = make_run(tmp_path / "a" / "run", "finetune", [0.3, 0.4], [0.6, 0.5], steps=2)
    second = make_run(tmp_path / "b" / "run", "lora", [0.3, 0.4], [0.6, 0.5], steps=2)
    assert [run.label for run in load_runs([first, second])] == ["a/run", "b/run"]
    rows = comparison_rows(load_runs([first, second]))
    assert {row["run"] for row in rows} == {"a/run", "b/run"}


def test_runs_without_zero_shot_sets_are_reported_without_the_plane(tmp_path, capsys):
    run = make_run(tmp_path / "no-zero-shot", "finetune", [0.3, 0.4, 0.5], None, steps=3)
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert "note: no A_KA-A_ZS plot" in capsys.readouterr().out
    assert not (out / "plane.png").exists() and (out / "trajectories.png").is_file() and (out / "heatmap-no-zero-shot.png").is_file()
    assert main(["compare", str(run), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["A_ZS"] is None and row["A_KA"] == pytest.approx(0.5)


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no evaluations yet" in capsys.readouterr().err


@pytest.mark.slow
def test_report_on_real_tiny_runs(small_spec, tmp_path, capsys):
    spec = small_spec(num_tasks=2, steps=2)
    run_dirs = []
    for method in ("finetune", "lora"):
        run_dir = tmp_path / method
        assert main(["run", str(spec), "--set", f"method.name={method}", "--output", str(run_dir), "--quiet"]) == 0
        run_dirs.append(run_dir)
    capsys.readouterr()
    out = tmp_path / "report"
    assert main(["report", *map(str, run_dirs), "--out", str(out)]) == 0
    assert str(out / "index.html") in capsys.readouterr().out
    assert (out / "plane.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "schedule.png").is_file() and (out / "heatmap-lora.png").is_file()
    assert main(["compare", *map(str, run_dirs), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["method"] for row in rows} == {"finetune", "lora"}
    assert all(row["steps_per_task"] == 2 and row["maf_per_task"] > 0 for row in rows)


def test_heatmaps_of_several_runs_share_one_colour_scale_and_mark_trained_tasks(runs, tmp_path):
    from fomo_host.reporting import plots

    loaded = load_runs(runs)
    scale = plots.heatmap_scale(loaded)
    assert scale == (0.0, pytest.approx(0.65))  # the best score of any run (eager's arrows after task 3)
    drawn = [plots.draw_heatmap(run, tmp_path / f"{run.label}.png", scale) for run in loaded]
    assert drawn == [scale] * len(loaded)
    assert plots.draw_heatmap(loaded[0], tmp_path / "alone.png") == (0.0, pytest.approx(0.6))  # alone: its own best
    # task t trained on arrows (t even) or letters (t odd): boxes in the columns after those tasks
    steady = loaded[0]
    assert sorted(plots.trained_cells(steady, ["letters", "arrows", "shapes"])) == [(0, 2), (1, 1), (1, 3)]


def test_a_spec_label_names_the_run_in_legends_and_shared_labels_stay_apart(tmp_path):
    from fomo_host.reporting.plots import run_label

    first = make_run(tmp_path / "run-a", "lora", [0.3, 0.4], [0.6, 0.5], steps=2)
    second = make_run(tmp_path / "run-b", "lora", [0.3, 0.5], [0.6, 0.4], steps=2)
    for path in (first, second):
        spec = path / "spec.toml"
        spec.write_text(spec.read_text().replace('[run]\nname = "', '[run]\nlabel = "LoRA r8"\nname = "'), encoding="utf-8")
    alone = load_runs([first])[0]
    assert alone.label == "LoRA r8" and run_label(alone) == "LoRA r8"
    together = load_runs([first, second])
    assert [run.label for run in together] == ["LoRA r8 (run-a)", "LoRA r8 (run-b)"]
    assert [run.label for run in load_runs([first, second], labels=["short", "long"])] == ["short", "long"]


def test_the_plane_marks_every_distinct_base_model(tmp_path):
    """Runs of one base share its circle; a study over model sizes starts its paths from one circle per size."""
    from fomo_host.reporting import plots

    small = make_run(tmp_path / "small", "finetune", [0.30, 0.40], [0.60, 0.55], steps=2)
    small_again = make_run(tmp_path / "small-lora", "lora", [0.30, 0.35], [0.60, 0.58], steps=2)
    larger = make_run(tmp_path / "larger", "finetune", [0.34, 0.45], [0.66, 0.62], steps=2)
    assert plots.base_points(load_runs([small, small_again])) == [(0.30, 0.60)]
    both = load_runs([small, small_again, larger])
    assert plots.base_points(both) == [(0.30, 0.60), (0.34, 0.66)]
    plots.draw_plane(both, tmp_path / "plane.png")
    assert (tmp_path / "plane.png").read_bytes().startswith(PNG_MAGIC)


def test_paired_differences_count_as_shown_only_beyond_the_seeds_spread():
    from fomo_host.reporting.groups import Difference, t_critical

    reference = {0: 0.50, 1: 0.60, 2: 0.40}
    # the same shift on every seed: shown, however small against the spread between seeds
    steady = Difference.paired({0: 0.53, 1: 0.62, 2: 0.43}, reference)
    assert steady.n == 3 and steady.mean == pytest.approx(0.08 / 3) and steady.shown
    # differences 0.1, 0.2, 0.3: t = 0.2 / (0.1 / sqrt 3) = 3.46 < 4.303
    noisy = Difference.paired({0: 0.6, 1: 0.8, 2: 0.7}, reference)
    assert noisy.mean == pytest.approx(0.2) and noisy.std == pytest.approx(0.1) and not noisy.shown
    # only the seeds both points have are paired; one pair has no spread, and nothing is shown
    single = Difference.paired({0: 0.9, 5: 0.1}, reference)
    assert (single.n, single.std, single.shown) == (1, None, False) and single.mean == pytest.approx(0.4)
    assert Difference.paired({}, reference).n == 0
    # Student's t, two-sided 5%: the table and the expansion beyond it (reference values to 3 decimals)
    assert (t_critical(2), t_critical(30)) == (4.303, 2.042)
    assert t_critical(40) == pytest.approx(2.021, abs=1e-3) and t_critical(120) == pytest.approx(1.980, abs=1e-3)
