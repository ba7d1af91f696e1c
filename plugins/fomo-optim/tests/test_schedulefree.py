"""Schedule-free AdamW's two forms of the weights, on one tensor."""

from __future__ import annotations

import torch

from fomo_host.testing import task_optimizer


def test_eval_gives_the_averaged_iterate_and_train_the_interpolation():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(8, 8))
    optimizer = task_optimizer([("w", weight)], {"name": "adamw-schedulefree", "lr": 0.1, "weight_decay": 0.0})
    optimizer.train()  # type: ignore[attr-defined]
    for step in range(3):
        weight.grad = torch.full_like(weight, float(step + 1))
        optimizer.step()
    z = optimizer.state[weight]["z"].clone()
    trained = weight.detach().clone()
    optimizer.eval()  # type: ignore[attr-defined]
    evaluated = weight.detach().clone()
    assert not torch.allclose(trained, evaluated)
    # training steps at y = (1 - beta1) z + beta1 x (beta1 = 0.9): the evaluated weight is x
    torch.testing.assert_close(evaluated, (trained - 0.1 * z) / 0.9)
    optimizer.train()  # type: ignore[attr-defined]
    torch.testing.assert_close(weight.detach(), trained)
