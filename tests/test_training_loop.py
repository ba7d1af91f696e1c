"""The engine's step loop: checkpoints inside a task resume exactly, a non-finite loss stops the run with one line
and keeps the last finite checkpoint, torch.compile and activation checkpointing train as the plain step does."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from fomo_host import hookimpl
from fomo_host.components import BuildContext, TaskInfo, TrainBatch, UpdateMethod
from fomo_host.components import Logger as LoggerBase
from fomo_host.engine import training
from fomo_host.engine.checkpoint import Checkpoint
from fomo_host.engine.run import ContinualRun, prepare
from fomo_host.engine.runtime import Precision
from fomo_host.engine.training import (
    CHECK_EVERY_STEPS,
    HostAdamW,
    LoopState,
    StepLoop,
    TaskOptimizers,
    TrainingStep,
    compile_failures,
    enable_activation_checkpointing,
    start_task,
)
from fomo_host.errors import FomoError, TrainingDiverged
from fomo_host.plugins import PluginHost, load_plugins
from fomo_host.progress import Reporter
from fomo_host.results import read_records
from fomo_host.spec import OptimizerSection
from fomo_host.spec_loading import build_spec
from fomo_host.weights import load_weights

SYNTHETIC_DATA: dict[str, Any] = {
    "pool_train_per_class": 8,
    "train_per_class": 8,
    "test_per_class": 4,
    "adaptation": ["shapes-new", "digits-new"],
    "zero_shot": ["shapes-outline"],
}
"""The synthetic plugin's small stream (2 adaptation sets, a pool, a held-out set)."""


STEPS = 5


def spec_table(**run: Any) -> dict[str, Any]:
    return {
        "run": {"name": "loop", "seed": 0, "batch_size": 16, "cpu": True, **run},
        "model": {"name": "tiny-clip", "warm_start": {"steps": 20, "batch_size": 16, "warmup_steps": 2}},
        "data": {"sources": [{"name": "synthetic", "params": dict(SYNTHETIC_DATA)}], "num_tasks": 2},
        "budget": {"steps_per_task": STEPS},
        "optimizer": {"lr": 1e-3},
        "scheduler": {"name": "cosine"},
        "evaluation": {"batch_size": 64},
    }


class InterruptAtStep:
    """A logger that stops the run, the way Ctrl-C does, when a task reaches a step."""

    def __init__(self, task: int, step: int) -> None:
        self.task, self.step = task, step

    @hookimpl
    def register_loggers(self, register: Any) -> None:
        register(name="interrupt", factory=lambda params, context: self.Logger(self.task, self.step), description="stops a run")

    class Logger(LoggerBase):
        def __init__(self, task: int, step: int) -> None:
            self.task, self.step = task, step

        def train_step(self, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
            if (task, step) == (self.task, self.step):
                raise KeyboardInterrupt

        def evaluation(self, record: dict[str, Any]) -> None:
            """It logs nothing."""


def run_stream(table: dict[str, Any], run_dir: Path, resume: bool = False, extra: list[tuple[str, object]] = ()) -> dict[str, Any]:
    host: PluginHost = load_plugins(extra=list(extra))
    spec = build_spec(table, registry=host.registry)
    reporter = Reporter(enabled=False)
    return ContinualRun(host, prepare(host, spec, reporter), run_dir, reporter).execute(resume=resume)


def comparable(run_dir: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "eval_seconds"} for record in read_records(run_dir)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    run_stream(spec_table(), run_dir)
    return run_dir


@pytest.mark.slow
def test_a_run_resumed_from_a_checkpoint_inside_a_task_equals_the_uninterrupted_run(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    table = spec_table(checkpoint_every_steps=2, loggers=["interrupt"], log_every_steps=1)
    with pytest.raises(KeyboardInterrupt):
        run_stream(table, run_dir, extra=[("interrupt", InterruptAtStep(task=1, step=3))])
    checkpoint = Checkpoint.load(run_dir)
    assert checkpoint is not None and (checkpoint.next_task, checkpoint.step_in_task) == (1, 2)  # at step 2 of task 2
    assert checkpoint.global_step == STEPS + 2 and checkpoint.random_state is not None

    run_stream(spec_table(checkpoint_every_steps=2), run_dir, resume=True)  # loggers and log_every_steps change no result
    assert comparable(run_dir) == comparable(uninterrupted)
    resumed, expected = (
        load_weights(run_dir / "weights" / "deployed-task-0002.safetensors"),
        load_weights(uninterrupted / "weights" / "deployed-task-0002.safetensors"),
    )
    assert all(torch.equal(resumed[name], expected[name]) for name in expected)


class PoisonedLoss(UpdateMethod):
    """Full fine-tuning whose extra loss turns NaN at one step of the second task."""

    def __init__(self) -> None:
        self.task, self.calls = 0, 0

    def trainable_parameters(self, model, task):
        self.task, self.calls = task.index, 0
        return list(model.named_parameters())

    def extra_loss(self, model, batch, output):
        self.calls += 1
        return output.contrastive_loss * math.nan if (self.task, self.calls) == (1, 3) else None


class PoisonPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(name="poisoned", factory=lambda params: PoisonedLoss(), description="NaN at task 2, step 3")


@pytest.mark.slow
def test_a_nonfinite_loss_stops_the_run_naming_task_and_step_and_keeps_the_last_finite_checkpoint(tmp_path):
    table = {**spec_table(checkpoint_every_steps=4), "method": {"name": "poisoned"}}
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"^task 2/2, step 3: the training loss is not finite") as caught:
        run_stream(table, run_dir, extra=[("poison", PoisonPlugin())])
    assert caught.value.exit_status == 3 and "\n" not in str(caught.value)
    checkpoint = Checkpoint.load(run_dir)
    assert checkpoint is not None and (checkpoint.next_task, checkpoint.step_in_task) == (1, 0)  # step 4 never came
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint.model.values() if tensor.is_floating_point())
    assert [record["task"] for record in read_records(run_dir)] == [-1, 0]


@pytest.mark.slow
def test_the_command_line_exits_with_3_on_a_diverged_run(small_spec, tmp_path, capsys):
    from fomo_host.cli import main

    spec = small_spec(num_tasks=2, steps=3)
    assert main(["run", str(spec), "--output", str(tmp_path / "run"), "--quiet", "--set", "optimizer.lr=1e30"]) == 3
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "task 1/2, step" in lines[0] and "not finite" in lines[0]
    saved = json.loads((tmp_path / "run" / "results.jsonl").read_text().splitlines()[0])
    assert saved["task"] == -1


# ----------------------------------------------------------------------------- the step itself


def tiny_model() -> Any:
    host = load_plugins()
    from fomo_host.resolve import resolve_component
    from fomo_host.spec import ComponentRef

    torch.manual_seed(0)
    return resolve_component(host.registry, "model", ComponentRef(name="tiny-clip"), "model").build(
        BuildContext(seed=0, cache_dir=Path("."))
    )


def train(model: torch.nn.Module, batch: TrainBatch, steps: int = 2, method: UpdateMethod | None = None) -> list[float]:
    spec = OptimizerSection(name="adamw", lr=1e-3)
    optimizer = start_task(model, method or FullModel(), TaskInfo(0, 1, steps, []), TaskOptimizers(spec, HostAdamW(), torch.device("cpu")))
    step = TrainingStep(model, optimizer, spec, Precision("no", "cpu"), method)
    return [float(step(batch, 1.0).contrastive) for _ in range(steps)]


class FullModel(UpdateMethod):
    def trainable_parameters(self, model, task):
        return list(model.named_parameters())


def a_batch(bundle: Any) -> TrainBatch:
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(8, 3, bundle.image_size, bundle.image_size, generator=generator)
    return TrainBatch(images, bundle.tokenizer([f"a photo of thing {i}" for i in range(8)]))


def test_a_compiled_model_trains_as_the_plain_one(monkeypatch):
    monkeypatch.setattr(training, "COMPILE_BACKEND", "aot_eager")
    bundle = tiny_model()
    twin = copy.deepcopy(bundle.model)
    batch = a_batch(bundle)
    plain = train(bundle.model, batch)
    training.compile_for_training(twin, None)
    compiled = train(twin, batch)
    assert compiled == pytest.approx(plain, rel=1e-5)
    assert set(twin.state_dict()) == set(bundle.model.state_dict())  # compiled in place: the names a checkpoint uses
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(twin.parameters(), bundle.model.parameters(), strict=True))


def test_a_compile_failure_is_one_line_naming_the_method():
    def broken_backend(graph: Any, example_inputs: Any) -> Any:
        raise RuntimeError("no C++ compiler\nmore detail")

    one_line = r"^run.compile: torch.compile cannot compile method 'lora' .*no C\+\+ compiler\); set run.compile = false$"
    with pytest.raises(FomoError, match=one_line), compile_failures("lora"):
        torch.compile(lambda x: x * 2, backend=broken_backend)(torch.ones(2))
    with pytest.raises(ValueError), compile_failures("lora"):  # anything else passes through unchanged
        raise ValueError("not a compile failure")


def test_activation_checkpointing_trains_as_the_plain_model():
    bundle = tiny_model()
    twin = copy.deepcopy(bundle.model)
    batch = a_batch(bundle)
    plain = train(bundle.model, batch)
    enable_activation_checkpointing(twin, "tiny-clip")
    assert train(twin, batch) == pytest.approx(plain, rel=1e-6)
    with pytest.raises(FomoError, match="run.activation_checkpointing: model 'plain' offers no set_grad_checkpointing"):
        enable_activation_checkpointing(torch.nn.Linear(2, 2), "plain")


def test_the_loop_reads_the_device_only_at_its_checks():
    bundle = tiny_model()
    batch = a_batch(bundle)
    spec = OptimizerSection(name="adamw", lr=1e-3)
    optimizer = start_task(bundle.model, FullModel(), TaskInfo(0, 1, 1, []), TaskOptimizers(spec, HostAdamW(), torch.device("cpu")))
    loop = StepLoop(TrainingStep(bundle.model, optimizer, spec, Precision("no", "cpu")), lambda index: 1.0, torch.device("cpu"))
    checks: list[int] = []
    saved: list[LoopState] = []
    steps = CHECK_EVERY_STEPS + 3
    loop.run(
        iter(lambda: batch, None), steps, on_check=lambda done, loss: checks.append(done), checkpoint_every=7, on_checkpoint=saved.append
    )
    assert checks == [7, 14, 21, CHECK_EVERY_STEPS, steps]
    assert [state.steps_done for state in saved] == [7, 14, 21]  # none at the last step: the task's end checkpoints
