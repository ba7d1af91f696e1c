"""The compute budget: FLOP counts against hand counts and a direct forward/backward, memory, steps per task, the cache."""

from __future__ import annotations

import contextlib
import json
import math
import types
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from fomo_host import hookimpl
from fomo_host.components import BuildContext, UpdateMethod
from fomo_host.engine.budget import (
    MeasurementError,
    StepCost,
    derive_budget,
    resolve_budget,
    steps_within,
    unmeasured_budget,
)
from fomo_host.engine.budget import cache as budget_cache
from fomo_host.engine.budget.measurement import StorageTally, fused_attention, held_tensors
from fomo_host.errors import SpecError
from fomo_host.plugins import load_plugins
from fomo_host.resolve import resolve_component
from fomo_host.spec import ComponentRef
from fomo_host.spec_loading import build_spec


@pytest.fixture(scope="module")
def host():
    return load_plugins()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Measurements shared by this module's tests (each key is measured once)."""
    return tmp_path_factory.mktemp("budget-cache")


def tiny_spec(batch_size: int = 8, budget: dict | None = None, num_tasks: int = 3, method: str = "finetune"):
    return build_spec(
        {
            "run": {"batch_size": batch_size},
            "model": {"name": "tiny-clip"},
            "data": {"sources": [{"name": "synthetic"}], "num_tasks": num_tasks},
            "budget": budget or {"steps_per_task": 5},
            "method": {"name": method},
        }
    )


def measure_step_costs(host, spec, methods: list[ComponentRef], measure: str, cache_dir: Path) -> list[StepCost]:
    model = resolve_component(host.registry, "model", spec.model, "model")
    optimizer = resolve_component(host.registry, "optimizer", spec.optimizer, "optimizer")
    trained = [(resolve_component(host.registry, "method", ref, "method"), optimizer) for ref in methods]
    return budget_cache.cached_step_costs(spec, model, trained, measure, spec.run.precision, cache_dir)


def build_model(host, spec, cache_dir: Path):
    return resolve_component(host.registry, "model", spec.model, "model").build(BuildContext(seed=spec.run.seed, cache_dir=cache_dir))


def tiny_clip_hand_count(batch: int) -> int:
    """FLOPs of one full fine-tuning step of the default tiny CLIP, by hand.

    Image tower: 32 px, patch 8 -> 16 patches + class token = 17 tokens of width 96, 3 blocks, MLP 192.
    Text tower: 20 tokens of width 64, 3 blocks, MLP 128. Embedding 64. A matmul of (m, k) by (k, n) is 2mkn;
    its backward pass is twice that (both inputs need gradients, all the way to the first block). The patch
    convolution's backward computes only the weight gradient (images need none). Attention: two products
    forward, five backward (fused kernels recompute the scores). Logits: B x B over the embedding.
    """
    image, width, mlp, layers = 17, 96, 192, 3
    text, text_width, text_mlp = 20, 64, 128
    embed = 64
    image_dense = layers * (2 * image * width * 3 * width + 2 * image * width * width + 2 * 2 * image * width * mlp)
    image_dense += 2 * width * embed  # projection of the class token
    text_dense = layers * (
        2 * text * text_width * 3 * text_width + 2 * text * text_width * text_width + 2 * 2 * text * text_width * text_mlp
    )
    text_dense += 2 * text_width * embed
    attention = layers * (2 * image * image * width + 2 * text * text * text_width)  # one product (Q K^T or P V), both towers
    convolution = 2 * 16 * (3 * 8 * 8) * width
    per_sample = 3 * (image_dense + text_dense) + 2 * convolution + 7 * attention
    logits = 3 * 2 * batch * batch * embed
    return batch * per_sample + logits


def test_tiny_clip_step_matches_the_hand_count(host, cache):
    for batch in (4, 8):
        (cost,) = measure_step_costs(host, tiny_spec(batch), [ComponentRef(name="finetune")], "analytic", cache)
        assert cost.step_gflops * 1e9 == pytest.approx(tiny_clip_hand_count(batch), abs=0.5)
        assert cost.end_task_gflops == 0


def test_meta_count_equals_a_real_forward_backward_with_the_fused_recompute(host, cache):
    """On real CPU tensors (math attention, four backward products), plus the fifth product fused kernels add."""
    from fomo_host.components import TrainBatch
    from fomo_host.engine.training import forward_loss

    batch = 4
    bundle = build_model(host, tiny_spec(batch), cache)
    images = torch.randn(batch, 3, bundle.image_size, bundle.image_size)
    train_batch = TrainBatch(images, bundle.tokenizer(["a photo of a thing"] * batch))
    counter = FlopCounterMode(display=False)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH), counter:
        forward_loss(bundle.model, train_batch).contrastive_loss.backward()
    counts = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
    recompute = counts["aten.bmm"] // 6  # math attention: 2 products forward + 4 backward, all of one size
    (cost,) = measure_step_costs(host, tiny_spec(batch), [ComponentRef(name="finetune")], "analytic", cache)
    assert cost.step_gflops * 1e9 == pytest.approx(counter.get_total_flops() + recompute, abs=0.5)


def test_flops_are_linear_in_the_batch_but_for_the_logits(host, cache):
    small, large = (
        measure_step_costs(host, tiny_spec(batch), [ComponentRef(name="finetune")], "analytic", cache)[0].step_gflops * 1e9
        for batch in (8, 16)
    )
    # only the B x B logits (forward and backward) grow faster than the batch
    assert large - 2 * small == pytest.approx(3 * 2 * 64 * (16**2 - 2 * 8**2), abs=1)


def test_fused_attention_counts_the_recomputed_scores():
    query = torch.empty(2, 4, 10, 8, device="meta", requires_grad=True)

    def count(context: contextlib.AbstractContextManager) -> int:
        counter = FlopCounterMode(display=False)
        with context, counter:
            torch.nn.functional.scaled_dot_product_attention(query, query, query).sum().backward()
        return counter.get_total_flops()

    product = 2 * 2 * 4 * 10 * 10 * 8
    assert count(contextlib.nullcontext()) == 6 * product
    assert count(fused_attention()) == 7 * product
    assert torch.nn.functional.scaled_dot_product_attention is not None  # restored
    with fused_attention():
        pass
    assert count(contextlib.nullcontext()) == 6 * product


def test_end_of_task_work_is_counted_and_memory_orders_the_methods(host, cache):
    spec = tiny_spec(8)
    methods = [ComponentRef(name=name) for name in ("finetune", "lora", "ewc")]
    methods.append(ComponentRef(name="ewc", params={"fisher": "batch"}))
    finetune, lora, ewc, ewc_batch = measure_step_costs(host, spec, methods, "analytic", cache)
    # EWC's batch Fisher: fisher_batches (8) forward and backward passes of the loss, as many FLOPs as 8 training steps;
    # the per-sample Fisher adds one forward pass of each batch (the candidates) to the samples' forward and backward passes
    assert ewc.step_gflops == pytest.approx(finetune.step_gflops)
    assert ewc_batch.end_task_gflops == pytest.approx(8 * finetune.step_gflops)
    assert ewc.end_task_gflops == pytest.approx(8 * finetune.step_gflops * 4 / 3, rel=0.01)
    assert lora.end_task_gflops == 0 and lora.step_gflops < finetune.step_gflops
    # LoRA keeps no gradients or optimizer state of the base weights; EWC keeps anchors and a Fisher
    assert lora.peak_memory_bytes < finetune.peak_memory_bytes < ewc.peak_memory_bytes
    parameters = sum(p.numel() * 4 for p in build_model(host, spec, cache).model.parameters())
    # parameters, gradients and two AdamW moments at least, then activations
    assert finetune.peak_memory_bytes > 4 * parameters
    # EWC adds an anchor and a Fisher of every parameter
    assert ewc.peak_memory_bytes - finetune.peak_memory_bytes >= 2 * parameters


def test_per_sample_end_of_task_work_counted_by_extrapolation_equals_the_full_count(host, cache, tmp_path, monkeypatch):
    from fomo_host.engine.budget import measurement

    spec = tiny_spec(8)
    ewc = [ComponentRef(name="ewc", params={"fisher_batches": 2})]
    extrapolated = measure_step_costs(host, spec, ewc, "analytic", tmp_path / "extrapolated")[0]
    monkeypatch.setattr(measurement, "PROBE_SAMPLES", 10**6)  # every sample of every batch run under the counter
    counted = measure_step_costs(host, spec, ewc, "analytic", tmp_path / "counted")[0]
    assert spec.run.batch_size < measurement.PROBE_SAMPLES and extrapolated.end_task_gflops > 0
    assert extrapolated.end_task_gflops == pytest.approx(counted.end_task_gflops, rel=1e-9)
    assert extrapolated.step_gflops == counted.step_gflops


def test_storage_tally_counts_shared_storage_once():
    tally = StorageTally()
    weight = torch.empty(10, 10, device="meta")
    tally.add(weight)
    tally.add(weight.t())
    tally.add(weight[0])
    assert tally.nbytes == 400 and weight[3] in tally
    tally.add(torch.empty(5, dtype=torch.float16, device="meta"))
    assert tally.nbytes == 410


def test_held_tensors_walks_attributes_containers_and_modules():
    class Penalty:
        def __init__(self) -> None:
            self.anchor = torch.zeros(5)

        def __call__(self) -> torch.Tensor:
            return self.anchor.sum()

    class Holder:
        def __init__(self) -> None:
            self.plain = torch.zeros(2)
            self.nested = {"a": [torch.zeros(3), (torch.zeros(4),)]}
            self.module = torch.nn.Linear(2, 2)
            self.name = "x"
            self.penalty = Penalty()  # callable, and holds a tensor
            self.hook = lambda: torch.zeros(6)  # a function: what it would make is not held

    found = sorted(t.numel() for t in held_tensors(Holder()))
    assert found == [2, 2, 3, 4, 4, 5]  # bias, plain, list item, tuple item, weight, the penalty's anchor


def test_steps_within_the_budget():
    cost = StepCost(step_gflops=10.0, end_task_gflops=30.0, peak_memory_bytes=2, memory_measure="analytic")
    # (1000 / 2 - 30) / 10 = 47
    assert steps_within(1000.0, cost, 2.0) == 47
    assert steps_within(2 * (47 * 10 + 30), cost, 2.0) == 47  # exactly on the budget: not one step fewer
    with pytest.raises(SpecError, match="below one step"):
        steps_within(50.0, cost, 2.0)


def test_derive_budget_for_each_way_of_giving_it():
    cost = StepCost(step_gflops=100.0, end_task_gflops=0.0, peak_memory_bytes=50, memory_measure="analytic")
    reference = StepCost(step_gflops=100.0, end_task_gflops=0.0, peak_memory_bytes=100, memory_measure="analytic")
    by_steps = derive_budget(tiny_spec(10, {"steps_per_task": 7}), cost, reference)
    assert (by_steps.given, by_steps.steps_per_task, by_steps.memory_multiplier) == ("steps_per_task", 7, 0.5)
    assert by_steps.maf_per_step == 50.0 and by_steps.maf_per_task == 350.0 and by_steps.samples_per_task == 70
    assert derive_budget(tiny_spec(10, {"samples_per_task": 71}), cost, reference).steps_per_task == 8
    by_maf = derive_budget(tiny_spec(10, {"maf_per_task": 1000.0}), cost, reference)
    assert (by_maf.given, by_maf.steps_per_task) == ("maf_per_task", 20)
    assert by_maf.as_record()["maf_per_task"] == 1000.0


def test_a_maf_budget_gives_cheaper_methods_more_steps(host, cache):
    spec = tiny_spec(8, {"maf_per_task": 50.0})
    finetune = resolve_budget(host, spec, cache, torch.device("cpu"))
    lora = resolve_budget(host, spec, cache, torch.device("cpu"), ComponentRef(name="lora"))
    assert finetune.memory_multiplier == 1.0
    assert finetune.steps_per_task == int(50.0 // finetune.step_gflops)
    assert lora.steps_per_task > finetune.steps_per_task
    assert lora.maf_per_task <= 50.0 < lora.maf_per_task + lora.maf_per_step


def test_measurements_are_cached(host, tmp_path, monkeypatch):
    spec = tiny_spec(4)
    (first,) = measure_step_costs(host, spec, [ComponentRef(name="finetune")], "analytic", tmp_path)
    stored = list((tmp_path / "budget").glob("finetune-*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["key"]["batch_size"] == 4

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again instead of reading the cache")

    monkeypatch.setattr(budget_cache, "measure_cost", no_measuring)
    assert measure_step_costs(host, spec, [ComponentRef(name="finetune")], "analytic", tmp_path) == [first]
    with pytest.raises(AssertionError, match="measured again"):  # another batch is another key
        measure_step_costs(host, tiny_spec(6), [ComponentRef(name="finetune")], "analytic", tmp_path)


def test_cuda_measure_needs_a_cuda_device(host, tmp_path):
    spec = tiny_spec(4, {"steps_per_task": 2, "memory_measure": "cuda"})
    with pytest.raises(SpecError, match="needs a CUDA device"):
        resolve_budget(host, spec, tmp_path, torch.device("cpu"))


class ValueDependent(UpdateMethod):
    """Full fine-tuning whose extra loss reads a value: meta tensors have none."""

    def trainable_parameters(self, model, task):
        return list(model.named_parameters())

    def extra_loss(self, model, batch, output):
        return None if output.contrastive_loss.detach().item() > 0 else output.contrastive_loss


def test_a_method_the_meta_device_cannot_run_is_one_clear_error(tmp_path):
    module = types.ModuleType("value_dependent")

    @hookimpl
    def register_methods(register):
        register(name="value-dependent", factory=lambda params: ValueDependent(), description="reads a value")

    module.register_methods = register_methods
    host = load_plugins(extra=[("value-dependent", module)])
    spec = tiny_spec(4, {"steps_per_task": 3}, method="value-dependent")
    expected = r"cannot measure method 'value-dependent' with optimizer 'adamw' on model 'tiny-clip': RuntimeError"
    with pytest.raises(MeasurementError, match=expected):
        resolve_budget(host, spec, tmp_path, torch.device("cpu"))
    # a budget in steps still trains: its steps stand, the figures are unknown
    unmeasured = unmeasured_budget(spec)
    assert unmeasured.steps_per_task == 3 and math.isnan(unmeasured.maf_per_task) and unmeasured.memory_measure == "none"


def test_spec_takes_exactly_one_budget():
    with pytest.raises(SpecError, match="exactly one of samples_per_task, steps_per_task or maf_per_task"):
        tiny_spec(4, {"steps_per_task": 2, "maf_per_task": 10.0})


def test_budget_command_lists_methods(tmp_path, capsys):
    from fomo_host.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[run]\nbatch_size = 8\n[model]\nname = "tiny-clip"\n[[data.sources]]\nname = "synthetic"\n'
        "[data]\nnum_tasks = 3\n[budget]\nmaf_per_task = 40.0\n",
        encoding="utf-8",
    )
    assert main(["budget", str(spec), "--methods", "finetune,lora,bitfit", "--json"]) == 0
    rows = {row["method"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["finetune", "lora", "bitfit"]
    assert rows["finetune"]["memory_multiplier"] == 1.0
    for row in rows.values():
        assert row["maf_per_task"] <= 40.0 and row["given"] == "maf_per_task"
    assert main(["budget", str(spec), "--methods", "finetune,lora"]) == 0
    table = capsys.readouterr().out
    assert "GFLOPs/step" in table and "lora" in table
    assert main(["budget", str(spec), "--methods", "lora2"]) == 2
    assert "unknown method 'lora2'" in capsys.readouterr().err


@pytest.mark.slow
def test_vit_b16_full_finetuning_matches_the_paper(host, tmp_path):
    """The paper's compute table: 63,394.76 GFLOPs per full fine-tuning step of ViT-B/16 at batch 512."""
    spec = build_spec(
        {
            "run": {"batch_size": 512},
            "model": {"name": "open-clip", "params": {"architecture": "ViT-B-16"}},
            "data": {"sources": [{"name": "synthetic"}], "num_tasks": 20},
            "budget": {"maf_per_task": 1420 * 63394.76},
        }
    )
    result = resolve_budget(host, spec, tmp_path, torch.device("cpu"))
    assert result.step_gflops == pytest.approx(63394.76, abs=0.01)
    assert result.steps_per_task == 1420


class RecordingAllocator:
    """Stands in for torch.cuda on the CPU: records the measurement's calls and answers fixed byte counts."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def synchronize(self, device):
        self.calls.append("synchronize")

    def empty_cache(self):
        self.calls.append("empty_cache")

    def memory_allocated(self, device):
        self.calls.append("memory_allocated")
        return 1000

    def reset_peak_memory_stats(self, device):
        self.calls.append("reset_peak")

    def max_memory_allocated(self, device):
        self.calls.append("max_allocated")
        return 1000 + 5_000


def test_the_cuda_measure_takes_the_peak_of_the_measured_step_alone(host, tmp_path, monkeypatch):
    from fomo_host.engine.budget import measurement

    spec = tiny_spec(4, {"steps_per_task": 2, "memory_measure": "cuda"}, num_tasks=2, method="ewc")
    stepped: list[str] = []
    original = measurement.TrainingStep.__call__

    def recorded_step(self, batch, lr_factor):
        stepped.append("step")
        allocator.calls.append("step")
        return original(self, batch, lr_factor)

    monkeypatch.setattr(measurement.TrainingStep, "__call__", recorded_step)
    allocator = RecordingAllocator()
    model = resolve_component(host.registry, "model", spec.model, "model")
    method = resolve_component(host.registry, "method", spec.method, "method")
    optimizer = resolve_component(host.registry, "optimizer", spec.optimizer, "optimizer")
    bundle = model.build(BuildContext(seed=0, cache_dir=tmp_path))
    peak = measurement.measure_cuda_peak(spec, method, optimizer, bundle, "no", torch.device("cpu"), allocator)
    assert peak == 5_000 and stepped == ["step"]  # one step: task 1's, after task 0's end-of-task work (EWC's Fisher)
    calls = allocator.calls
    assert calls[calls.index("step") - 2 : calls.index("step") + 3] == ["synchronize", "reset_peak", "step", "synchronize", "max_allocated"]
    assert calls.index("memory_allocated") < calls.index("reset_peak")  # the baseline is taken before the model arrives
