"""The CSV and TensorBoard loggers: off unless a spec lists them, what they write, resuming, and one real run."""

from __future__ import annotations

import csv
import importlib.util
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fomo_loggers.params import MLflowParams, WandbParams

from fomo_host.api import ProcessInfo, component_provider
from fomo_host.testing import LoggerConformance, lifecycle_hooks, make_spec, run_cli

TABLE = {"model": {"name": "tiny-clip"}, "data": {"sources": [{"name": "synthetic"}]}, "budget": {"steps_per_task": 2}}
SPEC = make_spec(TABLE, components=False)


class Hooks:
    """The lifecycle hooks of the installed plugins for one run directory, with a spec listing ``loggers``."""

    def __init__(self, run_dir: Path, loggers: list, spec=SPEC) -> None:
        self.spec = make_spec(
            {**spec.model_dump(mode="json"), "run": {**spec.run.model_dump(mode="json"), "loggers": loggers}}, components=False
        )
        self.common = {"run_dir": run_dir, "loggers": self.spec.run.logger_names(), "process": ProcessInfo()}
        self.hook = lifecycle_hooks()

    def run_start(self, resumed_from_task=None) -> None:
        self.hook.on_run_start(spec=self.spec, num_tasks=4, steps_per_task=STEPS, resumed_from_task=resumed_from_task, **self.common)

    def __getattr__(self, name: str):
        caller = getattr(self.hook, f"on_{name}")
        return lambda **arguments: caller(**arguments, **self.common)


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


STEPS = 4


def simulate(run_dir: Path, loggers: list, tasks: range, resumed_from_task: int | None = None, spec=SPEC) -> None:
    """The hooks in the order the engine calls them: 4 steps per task, a step report every 2 steps."""
    hooks = Hooks(run_dir, loggers, spec)
    hooks.run_start(resumed_from_task)
    if resumed_from_task is None:
        hooks.evaluation(record=record(-1, 0.1))
    for task in tasks:
        hooks.task_start(task=task, num_tasks=4, steps=STEPS, concepts=[f"letters::{task}", "letters::x"])
        for step in (2, 4):
            loss, lr = 3.0 - task - step / 10, 1e-3 * step
            hooks.train_step(task=task, num_tasks=4, step=step, steps=STEPS, global_step=task * STEPS + step, loss=loss, lr=lr)
        hooks.task_end(task=task, num_tasks=4, steps=STEPS, mean_loss=2.0 - task)
        hooks.evaluation(record=record(task, 0.2 + 0.1 * task))
    hooks.run_end(summary=summary_of(len(tasks)))


def summary_of(tasks: int) -> dict:
    return {
        "tasks_done": tasks,
        **{key: {"final": 0.5, "mean": 0.4} for key in ("A_KA", "A_ZS", "GM")},
        "forgetting": {"adaptation_mean": 0.05},
        "backward_transfer": {"mean": -0.01},
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_plugin_registers_its_loggers():
    for name in ("csv", "mlflow", "tensorboard", "wandb"):
        assert component_provider("logger", name).distribution == "fomo-loggers"


def test_loading_the_plugin_imports_no_tracker():
    code = "import sys, fomo_loggers.plugin; print(sorted(m for m in ('wandb', 'mlflow', 'tensorboard') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_nothing_is_written_unless_the_spec_lists_a_logger(tmp_path):
    simulate(tmp_path, [], range(2))
    assert list(tmp_path.iterdir()) == []


def test_csv_logger_writes_evaluations_tasks_and_steps_with_tasks_counted_from_1(tmp_path):
    simulate(tmp_path, ["csv"], range(3))
    evaluations = read_csv(tmp_path / "logs" / "evaluations.csv")
    assert [row["task"] for row in evaluations] == ["0", "1", "2", "3"]  # 0 = the base model
    assert float(evaluations[2]["A_KA"]) == pytest.approx(0.3)
    assert float(evaluations[2]["score/letters"]) == pytest.approx(0.3) and evaluations[2]["shapes/top5"] == "0.8"
    assert evaluations[3]["maf"] == "6.0" and evaluations[0]["train_loss"] == ""
    tasks = read_csv(tmp_path / "logs" / "tasks.csv")
    summary = [(row["task"], row["mean_loss"], row["num_concepts"]) for row in tasks]
    assert summary == [("1", "2.0", "2"), ("2", "1.0", "2"), ("3", "0.0", "2")]
    assert tasks[1]["concepts"] == "letters::1;letters::x"
    steps = read_csv(tmp_path / "logs" / "steps.csv")
    assert [(row["task"], row["step"], row["global_step"]) for row in steps][:3] == [("1", "2", "2"), ("1", "4", "4"), ("2", "2", "6")]
    assert float(steps[1]["loss"]) == pytest.approx(2.6) and float(steps[1]["lr"]) == pytest.approx(4e-3)
    assert not (tmp_path / "tensorboard").exists()


def test_csv_logger_drops_the_rows_a_resume_redoes(tmp_path):
    hooks = Hooks(tmp_path, ["csv"])
    hooks.run_start()
    hooks.evaluation(record=record(-1, 0.1))
    for task in range(3):  # interrupted after evaluating task 2 (0-based), before its checkpoint
        hooks.task_start(task=task, num_tasks=4, steps=2, concepts=["c"])
        hooks.train_step(task=task, num_tasks=4, step=2, steps=2, global_step=task * STEPS + 2, loss=1.0, lr=0.1)
        hooks.task_end(task=task, num_tasks=4, steps=2, mean_loss=1.0)
        hooks.evaluation(record=record(task, 0.9))
    simulate(tmp_path, ["csv"], range(2, 4), resumed_from_task=2)
    assert [row["task"] for row in read_csv(tmp_path / "logs" / "evaluations.csv")] == ["0", "1", "2", "3", "4"]
    assert [row["task"] for row in read_csv(tmp_path / "logs" / "tasks.csv")] == ["1", "2", "3", "4"]
    assert [row["global_step"] for row in read_csv(tmp_path / "logs" / "steps.csv")] == ["2", "6", "10", "12", "14", "16"]
    assert float(read_csv(tmp_path / "logs" / "evaluations.csv")[3]["A_KA"]) == pytest.approx(0.4)  # the redone task


def test_tensorboard_logger_writes_scalars_by_tasks_done_and_steps_by_global_step(tmp_path):
    simulate(tmp_path, ["tensorboard"], range(2))
    values = scalars(tmp_path / "tensorboard")
    assert values["aggregate/A_KA"] == [(0, pytest.approx(0.1)), (1, pytest.approx(0.2)), (2, pytest.approx(0.3))]
    assert values["train/mean_loss"] == [(1, 2.0), (2, 1.0)]
    assert values["metric/letters/top5"][0] == (0, pytest.approx(0.9))
    assert values["compute/maf"][-1] == (2, 4.0)
    assert "score/shapes" in values and not (tmp_path / "logs").exists()
    steps = scalars(tmp_path / "tensorboard" / "steps")
    assert [step for step, _ in steps["train/loss"]] == [2, 4, 6, 8]
    assert steps["train/lr"][1] == (4, pytest.approx(4e-3))


def test_a_resumed_tensorboard_file_sorts_after_the_interrupted_runs(tmp_path):
    """TensorBoard reads event files in name order; one of the same second as the last could be read before it."""
    import time

    from fomo_loggers.tensorboard_logger import EVENT_FILE_PREFIX, wait_past_newest_event_file

    (tmp_path / "steps").mkdir()
    last = tmp_path / f"{EVENT_FILE_PREFIX}{int(time.time()) + 1}.host.9.9"
    last.write_bytes(b"")
    (tmp_path / f"{EVENT_FILE_PREFIX}not-a-second.host").write_bytes(b"")  # not ours: ignored
    wait_past_newest_event_file(tmp_path)
    wait_past_newest_event_file(tmp_path / "steps")  # no event file yet: no wait
    new = f"{EVENT_FILE_PREFIX}{int(time.time())}.host.10.10"
    assert sorted([last.name, new]) == [last.name, new]


def test_tensorboard_logger_purges_what_a_resume_redoes(tmp_path):
    hooks = Hooks(tmp_path, ["tensorboard"])
    hooks.run_start()
    for task in range(-1, 2):
        hooks.evaluation(record=record(task, 0.9))
        if task >= 0:
            hooks.train_step(task=task, num_tasks=4, step=4, steps=4, global_step=task * 4 + 4, loss=9.0, lr=0.1)
    simulate(tmp_path, ["tensorboard"], range(1, 2), resumed_from_task=1)
    assert scalars(tmp_path / "tensorboard")["aggregate/A_KA"] == [
        (0, pytest.approx(0.9)),
        (1, pytest.approx(0.9)),
        (2, pytest.approx(0.3)),
    ]
    assert scalars(tmp_path / "tensorboard" / "steps")["train/loss"] == [(4, 9.0), (6, pytest.approx(1.8)), (8, pytest.approx(1.6))]


def test_wandb_logger_offline_writes_config_steps_evaluations_and_summary(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    params = {"mode": "offline", "project": "fomo-test"}
    assert WandbParams.model_validate(params).problems() == []
    labelled = make_spec(SPEC.model_dump(mode="json"), ["run.label=my label"], components=False)
    simulate(tmp_path, [{"name": "wandb", "params": params}], range(2), spec=labelled)
    (log,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    run, config, history, summary = read_wandb(log)
    assert run.display_name == "my label" and run.project == "fomo-test"
    assert config["method"]["name"] == "finetune" and config["steps_per_task"] == STEPS and config["run"]["label"] == "my label"
    steps = [row for row in history if "train/loss" in row]
    assert [row["global_step"] for row in steps] == [2, 4, 6, 8]
    assert steps[1]["train/loss"] == pytest.approx(2.6) and steps[1]["train/lr"] == pytest.approx(4e-3) and steps[2]["train/task"] == 2
    evaluations = [row for row in history if "aggregate/A_KA" in row]
    assert [row["tasks_done"] for row in evaluations] == [0, 1, 2]
    assert evaluations[2]["aggregate/A_KA"] == pytest.approx(0.3) and evaluations[0]["metric/letters/top5"] == pytest.approx(0.9)
    assert summary["final/GM"] == pytest.approx(0.5) and summary["final/forgetting"] == pytest.approx(0.05)
    assert (tmp_path / "logs" / "wandb-run-id").read_text() == run.run_id


def test_wandb_logger_says_how_to_log_in(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    (problem,) = WandbParams().problems()
    assert "wandb login" in problem and "params.mode = 'offline'" in problem
    assert WandbParams(mode="disabled").problems() == []


def test_wandb_mode_falls_back_to_its_environment_variable_and_a_misspelt_one_is_named(monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert WandbParams().effective_mode() == "offline" and WandbParams().problems() == []
    assert WandbParams(mode="disabled").effective_mode() == "disabled"  # the spec's setting wins
    monkeypatch.setenv("WANDB_MODE", "ofline")
    (problem,) = WandbParams().problems()
    assert problem.startswith("params.mode is unset and WANDB_MODE='ofline' is not a W&B mode")


def test_mlflow_logger_writes_params_steps_evaluations_and_final_values_to_a_file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    params = {"tracking_uri": f"file:{store}", "experiment": "fomo-test"}
    assert MLflowParams.model_validate(params).problems() == []
    run_dir = tmp_path / "run"
    simulate(run_dir, [{"name": "mlflow", "params": params}], range(2))
    client = MlflowClient(f"file:{store}")
    run = client.get_run((run_dir / "logs" / "mlflow-run-id").read_text())
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert client.get_experiment(run.info.experiment_id).name == "fomo-test"
    assert run.data.params["method.name"] == "finetune" and run.data.params["budget.steps_per_task"] == "2"
    assert run.data.params["steps_per_task"] == str(STEPS) and run.data.tags["fomo.run_dir"] == str(run_dir.resolve())
    history = {
        key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)] for key in ("train/loss", "aggregate/A_KA")
    }
    assert [step for step, _ in history["train/loss"]] == [2, 4, 6, 8] and history["train/loss"][1][1] == pytest.approx(2.6)
    assert history["aggregate/A_KA"] == [(0, pytest.approx(0.1)), (1, pytest.approx(0.2)), (2, pytest.approx(0.3))]
    assert run.data.metrics["final/GM"] == pytest.approx(0.5) and run.data.metrics["score/shapes"] == pytest.approx(0.5)

    # a resume continues the same MLflow run
    simulate(run_dir, [{"name": "mlflow", "params": params}], range(1, 2), resumed_from_task=1)
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_mlflow_logger_explains_a_store_it_cannot_use(monkeypatch):
    pytest.importorskip("mlflow")
    if importlib.util.find_spec("sqlalchemy") is not None:
        pytest.skip("the full mlflow package is installed: its default store works")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (problem,) = MLflowParams().problems()
    assert "sqlite:///mlflow.db (params.tracking_uri and MLFLOW_TRACKING_URI are unset) needs the full mlflow package" in problem


def test_mlflow_tracking_uri_falls_back_to_its_environment_variable(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{blocker}/mlruns")
    (problem,) = MLflowParams().problems()
    source = f"MLFLOW_TRACKING_URI='file:{blocker}/mlruns' (params.tracking_uri is unset)"
    assert problem == f"{source}: MLflow cannot write its store there: {blocker} is a file, not a folder"
    assert MLflowParams(tracking_uri=f"file:{tmp_path}/mlruns").problems() == []  # the spec's setting wins
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    (problem,) = MLflowParams(tracking_uri=f"file:{tmp_path}/mlruns").problems()
    assert "is a file store, which MLflow 3 refuses unless MLFLOW_ALLOW_FILE_STORE=true" in problem


VALIDATE_SPEC = """
[run]
output_dir = "{output}"
[model]
name = "tiny-clip"
[[data.sources]]
name = "synthetic"
[budget]
steps_per_task = 2
"""


@pytest.mark.parametrize(
    ("loggers", "expected"),
    [
        (
            '[{name = "wandb", params = {mode = "ofline"}}]',
            "run.loggers.0.params.mode: Input should be 'online', 'offline' or 'disabled' (logger 'wandb' of fomo-loggers 0.1.0)",
        ),
        (
            '[{name = "mlflow", params = {tracking_uri = "file:BLOCKER/mlruns"}}]',
            "run.loggers.0 (logger 'mlflow' of fomo-loggers 0.1.0): params.tracking_uri 'file:BLOCKER/mlruns': "
            "MLflow cannot write its store there: BLOCKER is a file, not a folder",
        ),
        ('["csv", "csv"]', "run.loggers.1.name: logger 'csv' is listed twice; list each logger once"),
        ('["tensorbord"]', "unknown logger 'tensorbord' at"),
    ],
)
def test_validate_refuses_a_logger_setting_its_library_would_refuse_in_one_line_creating_nothing(
    tmp_path, capsys, monkeypatch, loggers, expected
):
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    spec = tmp_path / "spec.toml"
    spec.write_text(VALIDATE_SPEC.format(output=tmp_path / "runs"), encoding="utf-8")
    loggers = loggers.replace("BLOCKER", str(blocker))
    for command in (["validate", "--schema-only"], ["run"]):
        capsys.readouterr()
        assert run_cli(*command, str(spec), "--set", f"run.loggers={loggers}") == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and expected.replace("BLOCKER", str(blocker)) in error, error
        assert not (tmp_path / "runs").exists()


def read_wandb(path: Path) -> tuple:
    """An offline W&B run's records (a LevelDB-style log of protobuf records): run, config, history rows, summary."""
    # W&B's service process writes the file; it may still be finishing it when run.finish() has returned
    deadline = time.monotonic() + 60
    while True:
        run, config, history, summary, finished = parse_wandb(path.read_bytes())
        if finished or time.monotonic() > deadline:
            return run, config, history, summary
        time.sleep(0.2)


def parse_wandb(data: bytes) -> tuple:
    import json

    from wandb.proto import wandb_internal_pb2

    assert data[:4] == b":W&B"
    block, payloads, pending, offset = 32768, [], b"", 7
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # a block's tail too short for a header is padding
            offset += block - offset % block
            continue
        length, kind = struct.unpack("<HB", data[offset + 4 : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            continue
        pending += chunk
        if kind in (1, 4):  # a full record, or the last piece of one
            payloads.append(pending)
            pending = b""
    run, config, history, summary, finished = None, {}, [], {}, False
    for payload in payloads:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "exit":
            finished = True
    config = {key: value["value"] if isinstance(value, dict) and "value" in value else value for key, value in config.items()}
    return run, config, history, summary, finished


@pytest.mark.slow
def test_a_run_with_both_loggers(tmp_path, capsys):

    spec = tmp_path / "spec.toml"
    spec.write_text(
        """
[run]
batch_size = 16
loggers = ["csv", "tensorboard"]
log_every_steps = 2
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
steps_per_task = 3
""",
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    assert run_cli("run", str(spec), "--output", str(run_dir), "--quiet") == 0
    assert [row["task"] for row in read_csv(run_dir / "logs" / "evaluations.csv")] == ["0", "1", "2"]
    assert len(read_csv(run_dir / "logs" / "tasks.csv")) == 2
    # the step hook: every 2 steps and at each task's last step, the loss read only then
    steps = read_csv(run_dir / "logs" / "steps.csv")
    assert [(row["task"], row["step"], row["global_step"]) for row in steps] == [
        ("1", "2", "2"),
        ("1", "3", "3"),
        ("2", "2", "5"),
        ("2", "3", "6"),
    ]
    assert all(float(row["loss"]) > 0 for row in steps) and float(steps[0]["lr"]) > 0
    assert [step for step, _ in scalars(run_dir / "tensorboard")["aggregate/GM"]] == [0, 1, 2]
    assert [step for step, _ in scalars(run_dir / "tensorboard" / "steps")["train/loss"]] == [2, 3, 5, 6]
    capsys.readouterr()
    misspelt = tmp_path / "misspelt"
    assert run_cli("run", str(spec), "--set", 'run.loggers=["tensorbord"]', "--output", str(misspelt), "--quiet") == 2
    assert "unknown logger 'tensorbord' at " in capsys.readouterr().err
    assert not misspelt.exists()


class TestCSVLogger(LoggerConformance):
    logger_name = "csv"
    params = {"directory": "csv-logs", "steps": False}
    invalid_params = {"directory": "../outside"}


class TestTensorBoardLogger(LoggerConformance):
    logger_name = "tensorboard"
    invalid_params = {"flush_secs": 0}


class TestWandbLogger(LoggerConformance):
    logger_name = "wandb"
    params = {"mode": "offline"}
    invalid_params = {"mode": "ofline"}

    @pytest.fixture(autouse=True)
    def _quiet(self, monkeypatch):
        monkeypatch.setenv("WANDB_SILENT", "true")


class TestMLflowLogger(LoggerConformance):
    logger_name = "mlflow"
    invalid_params = {"tracking_uri": ""}

    @pytest.fixture(autouse=True)
    def _store_in_tmp(self, tmp_path, monkeypatch):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{tmp_path}/mlruns")
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
