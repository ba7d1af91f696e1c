"""run.fsdp: the model sharded over processes trains as the unsharded one, its whole weights and optimizer state go
out and back in exactly, and a run that cannot shard says so in one line before training."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as multiprocessing

from fomo_host.components import BuildContext, TrainBatch


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_run_that_cannot_shard_says_so_before_training(small_spec, tmp_path, capsys):
    from fomo_host.cli import main

    spec = str(small_spec(num_tasks=2, steps=2))
    assert main(["run", spec, "--output", str(tmp_path / "a"), "--set", "run.fsdp=true", "--set", "method.name=lora"]) == 2
    assert "run.fsdp: method 'lora' keeps tensors of its own" in capsys.readouterr().err
    assert main(["run", spec, "--output", str(tmp_path / "b"), "--set", "run.fsdp=true"]) == 2
    assert "run.fsdp shards the model over processes, and this run has one" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _round_trip(rank: int, world_size: int, port: int, folder: str) -> None:
    """In each process: train a sharded tiny CLIP two steps, take its whole weights and optimizer state out, load them
    into a fresh sharded copy, and check one more step gives the same weights on both."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from fomo_host.components import ParamGroup
    from fomo_host.engine.runtime import Precision, Runtime
    from fomo_host.engine.sharding import FsdpSharding
    from fomo_host.engine.training import HostAdamW, TaskOptimizers, TrainingStep
    from fomo_host.plugins import load_plugins
    from fomo_host.resolve import resolve_component
    from fomo_host.spec import ComponentRef, OptimizerSection

    runtime = Runtime.create("no", cpu=True)
    assert runtime.world_size == world_size
    host = load_plugins()
    torch.manual_seed(0)
    bundle = resolve_component(host.registry, "model", ComponentRef(name="tiny-clip"), "model").build(BuildContext(0, Path(folder)))
    fresh = resolve_component(host.registry, "model", ComponentRef(name="tiny-clip"), "model").build(BuildContext(0, Path(folder)))
    spec = OptimizerSection(name="adamw", lr=1e-3)
    sharding = FsdpSharding(runtime)
    generator = torch.Generator().manual_seed(rank)
    batch = TrainBatch(torch.randn(4, 3, 32, 32, generator=generator), bundle.tokenizer([f"thing {rank} {i}" for i in range(4)]))

    def trained(model: torch.nn.Module) -> tuple[TrainingStep, torch.optim.Optimizer]:
        sharding.shard(model)
        optimizer = TaskOptimizers(spec, HostAdamW(), runtime.device).build([ParamGroup(list(model.parameters()))])
        return TrainingStep(model, optimizer, spec, Precision("no", "cpu")), optimizer

    first, first_optimizer = trained(bundle.model)
    first(batch, 1.0)
    first(batch, 1.0)
    weights = sharding.full_weights(bundle.model)
    state = sharding.optimizer_state(bundle.model, first_optimizer)
    assert all(not hasattr(tensor, "to_local") for tensor in weights.values())  # whole tensors, on every process
    assert set(weights) == set(fresh.model.state_dict())  # under the usual names

    second, second_optimizer = trained(fresh.model)
    sharding.load_weights(fresh.model, weights)
    sharding.load_optimizer_state(fresh.model, second_optimizer, state)
    first(batch, 1.0)
    second(batch, 1.0)
    after_first, after_second = sharding.full_weights(bundle.model), sharding.full_weights(fresh.model)
    different = [name for name in after_first if not torch.equal(after_first[name], after_second[name])]
    if rank == 0:
        Path(folder, "result.json").write_text(json.dumps({"different": different, "count": len(after_first)}))
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.representative
def test_whole_weights_and_optimizer_state_go_out_of_the_shards_and_back_exactly(tmp_path, monkeypatch):
    # the spawned processes unpickle _round_trip by its module's name (tests.test_sharding) with this process's
    # sys.path; under the `pytest` script (not `python -m pytest`) the repository root is not on it
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    multiprocessing.spawn(_round_trip, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["count"] > 50 and result["different"] == []


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.representative
def test_a_sharded_two_process_run_matches_the_one_process_run(small_spec, tmp_path):
    spec = small_spec(num_tasks=2, steps=4)
    single = tmp_path / "single"
    finished = subprocess.run(
        [sys.executable, "-m", "fomo_host.cli", "run", str(spec), "--output", str(single)], capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    sharded = tmp_path / "sharded"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", "fomo_host.cli", "run", str(spec), "--output", str(sharded),
        "--set", "run.fsdp=true", "--set", "run.checkpoint_every_steps=3",
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "device cpu x2" in finished.stderr
    one, two = ([json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()] for run in (single, sharded))
    for a, b in zip(one, two, strict=True):
        assert b["task"] == a["task"]
        assert b["A_KA"] == pytest.approx(a["A_KA"], abs=0.02) and b["A_ZS"] == pytest.approx(a["A_ZS"], abs=0.02)
        if "train_loss" in a:
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)


def test_the_unsharded_layout_moves_weights_through_the_method_and_keeps_checkpoint_states_apart():
    """NoSharding, the layout of every run without run.fsdp: deploy weights cross through the method's own export and
    import (a method may fold adapters there), a checkpoint's model state is a CPU copy of the live state."""
    from fomo_host.components import TaskInfo, UpdateMethod
    from fomo_host.engine.runtime import Runtime
    from fomo_host.engine.sharding import NoSharding

    class Doubling(UpdateMethod):
        """Exports twice its live weights and imports half: what crosses must be the method's view."""

        def trainable_parameters(self, model: torch.nn.Module, task: TaskInfo) -> list[tuple[str, torch.nn.Parameter]]:
            return list(model.named_parameters())

        def export_weights(self, model):
            return {name: tensor.detach() * 2 for name, tensor in model.state_dict().items()}

        def import_weights(self, model, weights):
            model.load_state_dict({name: tensor / 2 for name, tensor in weights.items()})

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    layout = NoSharding(Runtime.create("no", cpu=True), Doubling())
    layout.shard(model)
    assert layout.forward_model(model) is model  # one process: no data-parallel wrapper

    exported = layout.export_weights(model)
    assert torch.equal(exported["weight"], model.weight.detach() * 2)
    layout.import_weights(model, {name: tensor * 3 for name, tensor in exported.items()})
    assert torch.equal(model.weight.detach(), exported["weight"] * 3 / 2)

    state = layout.model_state(model)
    assert state.keys() == model.state_dict().keys()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(state["weight"], model.weight.detach())  # a copy, not a view of the live weights
    layout.load_model_state(model, state)
    assert torch.equal(state["weight"], model.weight.detach())

    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    saved = layout.optimizer_state(model, optimizer)
    fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
    layout.load_optimizer_state(model, fresh, saved)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])

    assert layout.all_finite(model)
    with torch.no_grad():
        model.bias[0] = float("nan")
    assert not layout.all_finite(model)
