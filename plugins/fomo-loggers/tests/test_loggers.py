"""The CSV and TensorBoard loggers: off unless a spec lists them, what they write, resuming, and one real run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fomo_loggers import plugin

from fomo_host.plugins import load_plugins
from fomo_host.spec import build_spec

SPEC = build_spec({"model": {"name": "tiny-clip"}, "data": {"sources": [{"name": "synthetic"}]}, "budget": {"steps_per_task": 2}})


def record(task: int, a_ka: float) -> dict:
    return {
        "task": task,
        "step": 2 * (task + 1),
        "samples_seen": 16 * (task + 1),
        "subset_fraction": 1.0,
        "scores": {"letters": a_ka, "shapes": 0.5},
        "metrics": {"letters": {"top1": a_ka, "top5": 0.9}, "shapes": {"top1": 0.5, "top5": 0.8}},
        "A_KA": a_ka,
        "A_ZS": 0.5,
        "GM": (a_ka * 0.5) ** 0.5,
        "compute": {"gflops": 3.0 * (task + 1), "maf": 2.0 * (task + 1)},
        **({"train_loss": 1.5} if task >= 0 else {}),
    }


def simulate(run_dir: Path, loggers: list[str], tasks: range, resumed_from_task: int | None = None) -> None:
    """The hooks in the order the engine calls them."""
    plugin.on_run_start(run_dir=run_dir, spec=SPEC, resumed_from_task=resumed_from_task, loggers=loggers)
    if resumed_from_task is None:
        plugin.on_evaluation(run_dir=run_dir, record=record(-1, 0.1), loggers=loggers)
    for task in tasks:
        plugin.on_task_start(run_dir=run_dir, task=task, concepts=[f"letters::{task}", "letters::x"], loggers=loggers)
        plugin.on_task_end(run_dir=run_dir, task=task, steps=2, mean_loss=2.0 - task, loggers=loggers)
        plugin.on_evaluation(run_dir=run_dir, record=record(task, 0.2 + 0.1 * task), loggers=loggers)
    plugin.on_run_end(run_dir=run_dir, loggers=loggers)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_plugin_declares_its_loggers():
    assert plugin.logger_names() == ["csv", "tensorboard"]
    host = load_plugins()
    assert {"csv", "tensorboard"} <= {name for names in host.hook.logger_names() for name in names}


def test_nothing_is_written_unless_the_spec_lists_a_logger(tmp_path):
    simulate(tmp_path, [], range(2))
    simulate(tmp_path, ["some-other-plugins-logger"], range(2))
    assert list(tmp_path.iterdir()) == []


def test_csv_logger_writes_evaluations_and_tasks(tmp_path):
    simulate(tmp_path, ["csv"], range(3))
    evaluations = read_csv(tmp_path / "logs" / "evaluations.csv")
    assert [row["task"] for row in evaluations] == ["-1", "0", "1", "2"]
    assert float(evaluations[2]["A_KA"]) == pytest.approx(0.3)
    assert float(evaluations[2]["score/letters"]) == pytest.approx(0.3) and evaluations[2]["shapes/top5"] == "0.8"
    assert evaluations[3]["maf"] == "6.0" and evaluations[0]["train_loss"] == ""
    tasks = read_csv(tmp_path / "logs" / "tasks.csv")
    summary = [(row["task"], row["mean_loss"], row["num_concepts"]) for row in tasks]
    assert summary == [("0", "2.0", "2"), ("1", "1.0", "2"), ("2", "0.0", "2")]
    assert tasks[1]["concepts"] == "letters::1;letters::x"
    assert not (tmp_path / "tensorboard").exists()


def test_csv_logger_drops_the_rows_a_resume_redoes(tmp_path):
    plugin.on_run_start(run_dir=tmp_path, spec=SPEC, resumed_from_task=None, loggers=["csv"])
    plugin.on_evaluation(run_dir=tmp_path, record=record(-1, 0.1), loggers=["csv"])
    for task in range(3):  # interrupted after evaluating task 2, before its checkpoint
        plugin.on_task_start(run_dir=tmp_path, task=task, concepts=["c"], loggers=["csv"])
        plugin.on_task_end(run_dir=tmp_path, task=task, steps=2, mean_loss=1.0, loggers=["csv"])
        plugin.on_evaluation(run_dir=tmp_path, record=record(task, 0.9), loggers=["csv"])
    simulate(tmp_path, ["csv"], range(2, 4), resumed_from_task=2)
    assert [row["task"] for row in read_csv(tmp_path / "logs" / "evaluations.csv")] == ["-1", "0", "1", "2", "3"]
    assert [row["task"] for row in read_csv(tmp_path / "logs" / "tasks.csv")] == ["0", "1", "2", "3"]
    assert float(read_csv(tmp_path / "logs" / "evaluations.csv")[3]["A_KA"]) == pytest.approx(0.4)  # the redone task


def test_tensorboard_logger_writes_scalars_by_tasks_done(tmp_path):
    pytest.importorskip("tensorboard")
    simulate(tmp_path, ["tensorboard"], range(2))
    values = scalars(tmp_path)
    assert values["aggregate/A_KA"] == [(0, pytest.approx(0.1)), (1, pytest.approx(0.2)), (2, pytest.approx(0.3))]
    assert values["train/mean_loss"] == [(1, 2.0), (2, 1.0)]
    assert values["metric/letters/top5"][0] == (0, pytest.approx(0.9))
    assert values["compute/maf"][-1] == (2, 4.0)
    assert "score/shapes" in values and not (tmp_path / "logs").exists()


def test_tensorboard_logger_purges_what_a_resume_redoes(tmp_path):
    pytest.importorskip("tensorboard")
    plugin.on_run_start(run_dir=tmp_path, spec=SPEC, resumed_from_task=None, loggers=["tensorboard"])
    for task in range(-1, 2):
        plugin.on_evaluation(run_dir=tmp_path, record=record(task, 0.9), loggers=["tensorboard"])
    simulate(tmp_path, ["tensorboard"], range(1, 2), resumed_from_task=1)
    assert scalars(tmp_path)["aggregate/A_KA"] == [(0, pytest.approx(0.9)), (1, pytest.approx(0.9)), (2, pytest.approx(0.3))]


@pytest.mark.slow
def test_a_run_with_both_loggers(tmp_path, capsys):
    from fomo_host.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(
        """
[run]
batch_size = 16
loggers = ["csv", "tensorboard"]
[model]
name = "tiny-clip"
[[data.sources]]
name = "synthetic"
[data.sources.params]
pool_train_per_class = 6
train_per_class = 4
test_per_class = 2
retrieval_train = 16
retrieval_test = 8
adaptation = ["letters"]
zero_shot = ["shapes-outline"]
[data]
num_tasks = 2
[budget]
steps_per_task = 2
""",
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    assert main(["run", str(spec), "--output", str(run_dir), "--quiet"]) == 0
    assert [row["task"] for row in read_csv(run_dir / "logs" / "evaluations.csv")] == ["-1", "0", "1"]
    assert len(read_csv(run_dir / "logs" / "tasks.csv")) == 2
    assert [step for step, _ in scalars(run_dir)["aggregate/GM"]] == [0, 1, 2]
    capsys.readouterr()
    misspelt = tmp_path / "misspelt"
    assert main(["run", str(spec), "--set", 'run.loggers=["tensorbord"]', "--output", str(misspelt), "--quiet"]) == 2
    assert "no installed plugin provides logger 'tensorbord'; available: csv, tensorboard" in capsys.readouterr().err
    assert not misspelt.exists()
