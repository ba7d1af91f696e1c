"""GaLore's optimizer: which parameters are projected, weight decay, refusals."""

from __future__ import annotations

import pytest
import torch
from fomo_openclip.models import build_tiny_clip
from fomo_openclip.params import TinyCLIPParams
from galore_torch import GaLoreAdamW

from fomo_host.api import BuildContext, FomoError, ParamGroup
from fomo_host.testing import task_optimizer


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_tiny_clip(TinyCLIPParams(), BuildContext(seed=0, cache_dir=None)).model  # type: ignore[arg-type]


def galore(model: torch.nn.Module, params: dict, optimizer: dict | None = None, named=None) -> torch.optim.Optimizer:
    named = list(model.named_parameters()) if named is None else named
    return task_optimizer(named, {"name": "galore", "params": params, **(optimizer or {})})


def test_block_matrices_are_projected_and_everything_else_is_plain_adamw():
    model = tiny_model()
    optimizer = galore(model, {"rank": 16}, {"lr": 1e-3, "weight_decay": 0.1})
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


def test_a_method_s_groups_keep_their_settings_through_the_projection():
    model = tiny_model()
    named = list(model.named_parameters())
    visual = [p for name, p in named if name.startswith("visual.")]
    text = [p for name, p in named if not name.startswith("visual.")]
    optimizer = task_optimizer(
        named, {"name": "galore", "params": {"rank": 16}}, groups=[ParamGroup(visual, lr_scale=0.5), ParamGroup(text, weight_decay=0.0)]
    )
    scales = {(group["lr_scale"], "rank" in group, group["weight_decay"]) for group in optimizer.param_groups}
    assert {(0.5, True, 0.2), (0.5, False, 0.2), (0.5, False, 0.0), (1.0, True, 0.0), (1.0, False, 0.0)} == scales


def test_a_step_updates_the_model():
    model = tiny_model()
    optimizer = galore(model, {"rank": 8}, {"lr": 1e-2})
    before = model.visual.transformer.resblocks[0].mlp.c_fc.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    assert not torch.equal(before, model.visual.transformer.resblocks[0].mlp.c_fc.weight)


def test_nothing_to_project_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(FomoError, match="lower optimizer.params.rank"):
        galore(model, {"rank": 512})
    biases = [(name, p) for name, p in model.named_parameters() if name.endswith("bias")]
    with pytest.raises(FomoError, match="no trained transformer-block matrix"):
        galore(model, {"rank": 8}, named=biases)


def test_eight_bit_galore_needs_a_cuda_device():
    with pytest.raises(FomoError, match="needs a CUDA device"):
        galore(tiny_model(), {"rank": 8, "eight_bit": True})
