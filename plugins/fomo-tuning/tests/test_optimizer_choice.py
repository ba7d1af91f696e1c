"""The spec's [optimizer] name picks the optimizer every method's default builds."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from pydantic import ValidationError

from fomo_host.testing import optimizer_request


def parameters() -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(128, 64)), torch.nn.Parameter(torch.randn(64))]


NEEDS_BITSANDBYTES = pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="adamw8bit needs bitsandbytes")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("adamw", "torch.optim.adamw.AdamW"), pytest.param("adamw8bit", "bitsandbytes.optim.adamw.AdamW8bit", marks=NEEDS_BITSANDBYTES)],
)
def test_the_named_optimizer_is_built_and_steps(name, expected):
    weights = parameters()
    named = [(f"w{index}", weight) for index, weight in enumerate(weights)]
    optimizer = optimizer_request(named, {"name": name, "lr": 1e-2, "weight_decay": 0.1}).build()
    assert f"{type(optimizer).__module__}.{type(optimizer).__name__}" == expected
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.1, 0.0]  # no decay on 1-d tensors
    before = [w.detach().clone() for w in weights]
    for weight in weights:
        weight.grad = torch.ones_like(weight)
    optimizer.step()
    assert all(not torch.equal(b, w) for b, w in zip(before, weights, strict=True))


def test_an_unknown_optimizer_name_is_rejected():
    with pytest.raises(ValidationError, match="'adamw' or 'adamw8bit'"):
        optimizer_request([], {"name": "sgd"})
