"""Adapters on the tiny CLIP: folding, importing, resetting and where they may go."""

from __future__ import annotations

import copy

import pytest
import torch
from fomo_openclip.models import build_tiny_clip
from fomo_openclip.params import TinyCLIPParams
from fomo_peft.adapters import DoRA, LoRA, VeRA
from fomo_peft.params import DoRAParams, LoRAParams, VeRAParams
from pydantic import ValidationError

from fomo_host.api import BuildContext, FomoError, TaskInfo

METHODS = [
    pytest.param(LoRA, LoRAParams(rank=4), id="lora"),
    pytest.param(DoRA, DoRAParams(rank=4), id="dora"),
    pytest.param(VeRA, VeRAParams(rank=16), id="vera"),
]
TASK = TaskInfo(index=0, num_tasks=1, steps=1, concepts=[])


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_tiny_clip(TinyCLIPParams(), BuildContext(seed=0, cache_dir=None)).model.eval()  # type: ignore[arg-type]


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 32, 32, generator=generator), torch.randint(1, 1000, (4, 20), generator=generator)


def outputs(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        image_features, text_features, _ = model(*inputs())
    return image_features, text_features


def assert_same_features(got: tuple[torch.Tensor, ...], expected: tuple[torch.Tensor, ...]) -> None:
    """Equal up to float32 rounding: a wrapped layer runs another kernel than the plain one (torch 2.14.1 on CPU
    gives image features one ulp apart with all-zero adapters); the features are unit vectors, so 4 eps is a few ulps."""
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=4 * torch.finfo(torch.float32).eps)


def trained(method, model: torch.nn.Module) -> None:
    """Stand-in for training: move every adapter parameter away from its initial value."""
    with torch.no_grad():
        for _, parameter in method.trainable_parameters(model, TASK):
            parameter.add_(torch.randn_like(parameter) * 0.05)


@pytest.mark.parametrize(("method_class", "params"), METHODS)
def test_a_fresh_adapter_computes_exactly_the_base_model(method_class, params):
    base = tiny_model()
    live = method_class(params).prepare(copy.deepcopy(base))
    assert_same_features(outputs(live), outputs(base))


@pytest.mark.parametrize(("method_class", "params"), METHODS)
def test_exported_weights_compute_what_the_adapted_model_computes(method_class, params):
    base = tiny_model()
    method = method_class(params)
    live = method.prepare(copy.deepcopy(base))
    trained(method, live)
    before = copy.deepcopy(live.state_dict())
    full = method.export_weights(live)
    assert all(torch.equal(before[key], value) for key, value in live.state_dict().items()), "export modified the live model"
    assert set(full) == set(base.state_dict())
    plain = copy.deepcopy(base)
    plain.load_state_dict(full)
    for adapted, folded in zip(outputs(live), outputs(plain), strict=True):
        torch.testing.assert_close(adapted, folded, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("method_class", "params"), METHODS)
def test_imported_weights_are_computed_exactly_with_fresh_adapters(method_class, params):
    base = tiny_model()
    method = method_class(params)
    live = method.prepare(copy.deepcopy(base))
    trained(method, live)
    target = copy.deepcopy(base)
    with torch.no_grad():
        for parameter in target.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.01)
    method.import_weights(live, target.state_dict())
    assert_same_features(outputs(live), outputs(target))
    exported = method.export_weights(live)
    assert all(torch.equal(exported[name], value) for name, value in target.state_dict().items())


def test_merging_at_task_end_folds_the_adapter_and_starts_a_fresh_one():
    base = tiny_model()
    method = LoRA(LoRAParams(rank=4, merge_at_task_end=True))
    live = method.prepare(copy.deepcopy(base))
    trained(method, live)
    expected = method.export_weights(live)
    method.end_task(live, TASK, data=None)  # type: ignore[arg-type]
    after = method.export_weights(live)
    assert all(torch.equal(after[name], expected[name]) for name in expected)
    lora_b = [p for name, p in method.trainable_parameters(live, TASK) if "lora_B" in name]
    assert lora_b and all(torch.count_nonzero(p) == 0 for p in lora_b)


def test_adapters_are_part_of_the_model_state_the_host_checkpoints():
    method = DoRA(DoRAParams(rank=4))
    live = method.prepare(tiny_model())
    trained(method, live)
    trainable = {name for name, _ in method.trainable_parameters(live, TASK)}
    state = live.state_dict()
    assert trainable <= set(state)
    assert any(".parametrizations.in_proj_weight.0.magnitude" in name for name in trainable)
    assert any("lora_magnitude_vector" in name for name in trainable)
    fresh_method = DoRA(DoRAParams(rank=4))
    fresh = fresh_method.prepare(tiny_model())
    fresh.load_state_dict(state, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(outputs(fresh), outputs(live), strict=True))


def test_only_adapter_parameters_train():
    method = LoRA(LoRAParams(rank=2, targets=["c_fc"], towers="image", blocks=[1]))
    live = method.prepare(tiny_model())
    names = [name for name, _ in method.trainable_parameters(live, TASK)]
    assert sorted(names) == [
        "visual.transformer.resblocks.1.mlp.c_fc.lora_A.default.weight",
        "visual.transformer.resblocks.1.mlp.c_fc.lora_B.default.weight",
    ]


def test_blocks_the_model_lacks_are_a_clear_error():
    with pytest.raises(FomoError, match=r"blocks \[7\] do not exist in visual.transformer.resblocks, which has 3 blocks"):
        LoRA(LoRAParams(blocks=[0, 7])).prepare(tiny_model())


@pytest.mark.parametrize(
    ("params_class", "table", "message"),
    [
        (VeRAParams, {"targets": ["attn"]}, "VeRA adapts nn.Linear layers only"),
        (LoRAParams, {"dropout": 0.1}, "attention adapters update the weight itself"),
        (LoRAParams, {"targets": ["c_fc", "c_fc"]}, "listed twice"),
        (DoRAParams, {"blocks": []}, "at least one block"),
        (LoRAParams, {"targets": ["out_proj"]}, "'attn', 'c_fc' or 'c_proj'"),
    ],
)
def test_params_reject_what_cannot_work(params_class, table, message):
    with pytest.raises(ValidationError, match=message):
        params_class.model_validate(table)
