"""EWC's Fisher and penalty, SI's path integral, distillation's teacher."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from fomo_openclip.models import build_tiny_clip
from fomo_openclip.params import TinyCLIPParams
from fomo_regularization.distillation import Distillation
from fomo_regularization.ewc import EWC
from fomo_regularization.params import DistillationParams, EWCParams, SIParams
from fomo_regularization.si import SI
from torch import nn

from fomo_host.api import BuildContext, StepOutput, TaskInfo, TrainBatch

TASK = TaskInfo(index=0, num_tasks=2, steps=3, concepts=[])


def line_model(weight: float, bias: float) -> nn.Linear:
    """f(x) = weight * x + bias: two parameters."""
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(weight)
        model.bias.fill_(bias)
    return model


class RegressionData:
    """A TaskData over fixed regression batches: the 'images' are inputs, the 'tokens' targets."""

    def __init__(self, seed: int, count: int = 3) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.items = [TrainBatch(torch.randn(8, 3, generator=generator), torch.randn(8, 2, generator=generator)) for _ in range(count)]

    def batches(self, count: int) -> Iterator[TrainBatch]:
        yield from self.items[:count]

    def loss(self, model: nn.Module, batch: TrainBatch) -> torch.Tensor:
        return (model(batch.images) - batch.tokens).square().mean()

    def sample_losses(self, model: nn.Module, batch: TrainBatch) -> Iterator[torch.Tensor]:
        for index in range(len(batch.images)):
            yield (model(batch.images[index : index + 1]) - batch.tokens[index : index + 1]).square().mean()


class LineData(RegressionData):
    """Two batches of two (x, y) samples each, for f(x) = w x + b."""

    def __init__(self) -> None:
        self.items = [
            TrainBatch(torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [1.0]])),
            TrainBatch(torch.tensor([[-1.0], [0.0]]), torch.tensor([[0.0], [2.0]])),
        ]


def test_ewc_fisher_is_the_mean_of_per_sample_squared_gradients():
    """At (w, b) = (1, 0) the residuals w x + b - y are -2, 1 | -1, -2; per-sample gradients (2 r x, 2 r) are
    (-4, -4), (4, 2) | (2, -2), (0, -4)."""
    model = line_model(1.0, 0.0)
    method = EWC(EWCParams.model_validate({"fisher_batches": 2}))
    method.trainable_parameters(model, TASK)
    method.end_task(model, TASK, LineData())
    fisher = method.state_dict()["fisher"]
    assert float(fisher["weight"]) == pytest.approx((16 + 16 + 4 + 0) / 4)
    assert float(fisher["bias"]) == pytest.approx((16 + 4 + 4 + 16) / 4)
    assert all(p.grad is None for p in model.parameters())


def test_ewc_batch_fisher_squares_the_batch_mean_gradient():
    """The same samples: batch-mean gradients (0, -1) and (1, -3), squared and averaged over the two batches."""
    model = line_model(1.0, 0.0)
    method = EWC(EWCParams.model_validate({"fisher_batches": 2, "fisher": "batch"}))
    method.trainable_parameters(model, TASK)
    method.end_task(model, TASK, LineData())
    fisher = method.state_dict()["fisher"]
    assert float(fisher["weight"]) == pytest.approx((0 + 1) / 2)
    assert float(fisher["bias"]) == pytest.approx((1 + 9) / 2)


def squared_gradients(model: nn.Module, data: RegressionData, count: int) -> dict[str, torch.Tensor]:
    total = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for batch in data.batches(count):
        model.zero_grad()
        data.loss(model, batch).backward()
        for name, p in model.named_parameters():
            total[name] += p.grad.square() / count
    model.zero_grad()
    return total


def test_ewc_batch_fisher_is_the_mean_squared_gradient_decayed_across_tasks():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    method = EWC(EWCParams.model_validate({"lambda": 2.0, "gamma": 0.5, "fisher_batches": 3, "fisher": "batch"}))
    first, second = RegressionData(1), RegressionData(2)
    method.trainable_parameters(model, TASK)
    assert method.extra_loss(model, None, None) is None  # type: ignore[arg-type]  # nothing to hold on to yet
    method.end_task(model, TASK, first)
    expected_first = squared_gradients(model, first, 3)
    for name, value in expected_first.items():
        torch.testing.assert_close(method.state_dict()["fisher"][name], value)
    assert all(p.grad is None for p in model.parameters())
    method.end_task(model, TASK, second)
    expected_second = squared_gradients(model, second, 3)
    for name in expected_first:
        torch.testing.assert_close(method.state_dict()["fisher"][name], 0.5 * expected_first[name] + expected_second[name])


def test_ewc_penalty_is_half_lambda_fisher_weighted_distance_to_the_task_start():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    method = EWC(EWCParams.model_validate({"lambda": 4.0}))
    fisher = {name: torch.rand_like(p) for name, p in model.named_parameters()}
    method.load_state_dict({"fisher": fisher})
    method.trainable_parameters(model, TASK)
    assert float(method.extra_loss(model, None, None).detach()) == 0.0  # type: ignore[arg-type, union-attr]
    with torch.no_grad():
        model.weight.add_(0.1)
    expected = 0.5 * 4.0 * (fisher["weight"] * 0.1**2).sum()
    torch.testing.assert_close(method.extra_loss(model, None, None), expected)  # type: ignore[arg-type]


def test_ewc_params_use_the_name_lambda():
    assert EWCParams.model_validate({"lambda": 3.0}).strength == 3.0
    with pytest.raises(ValueError, match="strength"):
        EWCParams.model_validate({"strength": 3.0})


def si_step(method: SI, model: nn.Module, optimizer: torch.optim.Optimizer, x: float, y: float, grad_clip: float) -> None:
    """One training step in the order the engine takes it: loss + extra loss, backward, after_backward, clip, step."""
    loss = (model(torch.tensor([[x]])) - y).square().sum()
    extra = method.extra_loss(model, None, None)  # type: ignore[arg-type]
    (loss if extra is None else loss + extra).backward()
    method.after_backward(model)
    torch.nn.utils.clip_grad_norm_(list(model.parameters()), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    method.after_optimizer_step(model)


def test_si_path_integral_uses_the_unclipped_task_loss_gradient_alone():
    """Two SGD steps (lr 0.1, clip 1) on (w x + b - y)^2 at x = 1, y = 3 from (w, b) = (1, 0), with an SI penalty
    c = 0.5, Omega = (1, 2) already in place: worked out step by step with plain floats."""
    c, xi, lr, omega_before = 0.5, 0.1, 0.1, {"weight": 1.0, "bias": 2.0}
    model = line_model(1.0, 0.0)
    method = SI(SIParams(c=c, xi=xi))
    method.load_state_dict(
        {"omega": {name: torch.full((1, 1) if name == "weight" else (1,), value) for name, value in omega_before.items()}}
    )
    named = method.trainable_parameters(model, TASK)
    optimizer = torch.optim.SGD([p for _, p in named], lr=lr)

    w, b = 1.0, 0.0
    path = {"weight": 0.0, "bias": 0.0}
    path_of_the_stepped_gradient = {"weight": 0.0, "bias": 0.0}
    for _ in range(2):
        residual = w + b - 3.0
        task = {"weight": 2 * residual, "bias": 2 * residual}  # d/dw and d/db of (w + b - 3)^2
        penalty = {"weight": c * 2 * omega_before["weight"] * (w - 1.0), "bias": c * 2 * omega_before["bias"] * (b - 0.0)}
        total = {name: task[name] + penalty[name] for name in task}
        norm = (total["weight"] ** 2 + total["bias"] ** 2) ** 0.5
        step = {name: -lr * total[name] * min(1.0, 1.0 / norm) for name in total}  # clipped to norm 1
        for name in path:
            path[name] += -task[name] * step[name]
            path_of_the_stepped_gradient[name] += step[name] * step[name] / lr
        w, b = w + step["weight"], b + step["bias"]
        si_step(method, model, optimizer, 1.0, 3.0, grad_clip=1.0)
    assert float(model.weight.detach()) == pytest.approx(w) and float(model.bias.detach()) == pytest.approx(b)

    method.end_task(model, TASK, None)  # type: ignore[arg-type]
    omega = method.state_dict()["omega"]
    expected_weight = omega_before["weight"] + path["weight"] / ((w - 1.0) ** 2 + xi)
    expected_bias = omega_before["bias"] + path["bias"] / ((b - 0.0) ** 2 + xi)
    assert float(omega["weight"]) == pytest.approx(expected_weight, rel=1e-5)
    assert float(omega["bias"]) == pytest.approx(expected_bias, rel=1e-5)
    # the gradient the optimizer stepped on (task + penalty, clipped) would give a path integral ten times smaller
    assert path["weight"] > 5 * path_of_the_stepped_gradient["weight"]


def test_si_penalty_holds_the_task_start_weighted_by_the_importance():
    model = line_model(1.0, 0.0)
    method = SI(SIParams(c=3.0))
    method.load_state_dict({"omega": {"weight": torch.full((1, 1), 2.0), "bias": torch.full((1,), 0.5)}})
    method.trainable_parameters(model, TASK)
    with torch.no_grad():
        model.weight.add_(0.1)
        model.bias.add_(0.2)
    # c * (Omega_w dw^2 + Omega_b db^2) = 3 * (2 * 0.01 + 0.5 * 0.04)
    assert float(method.extra_loss(model, None, None)) == pytest.approx(3.0 * (2.0 * 0.01 + 0.5 * 0.04))  # type: ignore[arg-type]


def test_si_clamps_the_accumulated_importance_not_each_task():
    """A task whose path integral is negative (a step up the task loss) lowers the importance; only the sum is kept >= 0."""
    model = line_model(1.0, 0.0)
    method = SI(SIParams(c=0.0, xi=1.0))
    method.load_state_dict({"omega": {"weight": torch.full((1, 1), 1.0), "bias": torch.full((1,), 0.1)}})
    named = method.trainable_parameters(model, TASK)
    optimizer = torch.optim.SGD([p for _, p in named], lr=0.05)
    optimizer.param_groups[0]["lr"] = -0.05  # a step up the gradient
    si_step(method, model, optimizer, 1.0, 3.0, grad_clip=100.0)
    # gradient (-4, -4), step (-0.2, -0.2): omega = -(-4)(-0.2) = -0.8 each, over (0.2^2 + 1) = 1.04
    method.end_task(model, TASK, None)  # type: ignore[arg-type]
    omega = method.state_dict()["omega"]
    assert float(omega["weight"]) == pytest.approx(1.0 - 0.8 / 1.04)
    assert float(omega["bias"]) == 0.0  # 0.1 - 0.77 clamps to 0


def test_si_ignores_a_step_skipped_for_overflow():
    model = line_model(1.0, 0.0)
    method = SI(SIParams())
    method.trainable_parameters(model, TASK)
    model.weight.grad = torch.full((1, 1), float("inf"))
    model.bias.grad = torch.full((1,), float("nan"))
    method.after_backward(model)
    model.weight.grad = model.bias.grad = None  # the scaler skipped the step: nothing moved
    method.after_optimizer_step(model)
    method.end_task(model, TASK, None)  # type: ignore[arg-type]
    assert all(float(value) == 0.0 for value in method.state_dict()["omega"].values())


def clip() -> nn.Module:
    torch.manual_seed(0)
    return build_tiny_clip(TinyCLIPParams(), BuildContext(seed=0, cache_dir=None)).model  # type: ignore[arg-type]


def clip_batch() -> TrainBatch:
    generator = torch.Generator().manual_seed(1)
    return TrainBatch(torch.randn(6, 3, 32, 32, generator=generator), torch.randint(1, 1000, (6, 20), generator=generator))


def step_output(model: nn.Module, batch: TrainBatch) -> StepOutput:
    image, text, scale = model(batch.images, batch.tokens)
    return StepOutput(image, text, scale, torch.zeros(()))


@pytest.mark.parametrize("target", ["features", "logits"])
def test_distillation_is_zero_at_the_teacher_and_pulls_back_after_a_change(target):
    model = clip()
    method = Distillation(DistillationParams(weight=3.0, target=target))
    method.prepare(model)
    batch = clip_batch()
    assert float(method.extra_loss(model, batch, step_output(model, batch)).detach()) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        model.visual.proj.mul_(-1.0)
        model.logit_scale.add_(1.0)
    loss = method.extra_loss(model, batch, step_output(model, batch))
    assert float(loss.detach()) > 0.01
    loss.backward()
    assert model.visual.proj.grad is not None and all(p.grad is None for p in method.teacher.parameters())


def test_distillation_teacher_is_frozen_and_restored_from_the_state():
    model = clip()
    method = Distillation(DistillationParams())
    method.prepare(model)
    state = copy.deepcopy(method.state_dict())
    with torch.no_grad():
        model.visual.proj.add_(1.0)
    assert torch.equal(method.teacher.visual.proj, state["teacher"]["visual.proj"])  # a copy, not the live model
    resumed = Distillation(DistillationParams())
    resumed.prepare(clip())
    with torch.no_grad():
        resumed.teacher.visual.proj.zero_()
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(resumed.teacher.state_dict().values(), state["teacher"].values(), strict=True))
    assert not any(p.requires_grad for p in resumed.teacher.parameters())
