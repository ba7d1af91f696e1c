"""GaLore's parameter groups and optimizer choice."""

from __future__ import annotations

import pytest
import torch
from fomo_openclip.models import build_tiny_clip
from fomo_openclip.params import TinyCLIPParams
from fomo_optim.galore import GaLore
from fomo_optim.params import GaLoreParams
from galore_torch import GaLoreAdamW

from fomo_host.api import BuildContext, FomoError, TaskInfo
from fomo_host.testing import optimizer_request

TASK = TaskInfo(index=0, num_tasks=1, steps=1, concepts=[])


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_tiny_clip(TinyCLIPParams(), BuildContext(seed=0, cache_dir=None)).model  # type: ignore[arg-type]


def build(params: GaLoreParams, optimizer: dict) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = tiny_model()
    method = GaLore(params)
    named = method.trainable_parameters(model, TASK)
    return model, method.build_optimizer(optimizer_request(named, optimizer))


def test_block_matrices_are_projected_and_everything_else_is_plain_adamw():
    model, optimizer = build(GaLoreParams(rank=16), {"lr": 1e-3, "weight_decay": 0.1})
    assert isinstance(optimizer, GaLoreAdamW)
    names = {id(p): name for name, p in model.named_parameters()}
    projected = {names[id(p)] for group in optimizer.param_groups if "rank" in group for p in group["params"]}
    plain = {names[id(p)] for group in optimizer.param_groups if "rank" not in group for p in group["params"]}
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in projected
    assert "transformer.resblocks.2.mlp.c_proj.weight" in projected
    assert all(".resblocks." in name for name in projected)
    assert {"token_embedding.weight", "visual.proj", "logit_scale", "ln_final.bias"} <= plain
    assert projected | plain == set(names.values()) and not projected & plain
    decay = {names[id(p)]: group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay["visual.proj"] == 0.1 and decay["ln_final.weight"] == 0.0


def test_a_step_updates_the_model():
    model, optimizer = build(GaLoreParams(rank=8), {"lr": 1e-2})
    before = model.visual.transformer.resblocks[0].mlp.c_fc.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    assert not torch.equal(before, model.visual.transformer.resblocks[0].mlp.c_fc.weight)


def test_a_rank_above_every_matrix_is_a_clear_error():
    with pytest.raises(FomoError, match="lower method.params.rank"):
        GaLore(GaLoreParams(rank=512)).trainable_parameters(tiny_model(), TASK)


def test_eight_bit_galore_needs_a_cuda_device():
    with pytest.raises(FomoError, match="needs a CUDA device"):
        build(GaLoreParams(rank=8), {"name": "adamw8bit"})
