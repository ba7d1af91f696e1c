"""EWC's Fisher and penalty, SI's path integral, distillation's teacher."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from fomo_openclip.models import TinyCLIPParams, build_tiny_clip
from fomo_regularization.distillation import Distillation, DistillationParams
from fomo_regularization.ewc import EWC, EWCParams
from fomo_regularization.si import SI, SIParams
from torch import nn

from fomo_host.components import BuildContext, StepOutput, TaskInfo, TrainBatch

TASK = TaskInfo(index=0, num_tasks=2, steps=3, concepts=[])


class RegressionData:
    """A TaskData over fixed regression batches: the 'images' are inputs, the 'tokens' targets."""

    def __init__(self, seed: int, count: int = 3) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.items = [TrainBatch(torch.randn(8, 3, generator=generator), torch.randn(8, 2, generator=generator)) for _ in range(count)]

    def batches(self, count: int) -> Iterator[TrainBatch]:
        yield from self.items[:count]

    def loss(self, model: nn.Module, batch: TrainBatch) -> torch.Tensor:
        return (model(batch.images) - batch.tokens).square().mean()


def squared_gradients(model: nn.Module, data: RegressionData, count: int) -> dict[str, torch.Tensor]:
    total = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for batch in data.batches(count):
        model.zero_grad()
        data.loss(model, batch).backward()
        for name, p in model.named_parameters():
            total[name] += p.grad.square() / count
    model.zero_grad()
    return total


def test_ewc_fisher_is_the_mean_squared_gradient_decayed_across_tasks():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    method = EWC(EWCParams.model_validate({"lambda": 2.0, "gamma": 0.5, "fisher_batches": 3}))
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


def test_si_importance_is_the_path_integral_over_the_squared_change():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    method = SI(SIParams(c=1.0, xi=0.01))
    named = method.trainable_parameters(model, TASK)
    start = {name: p.detach().clone() for name, p in named}
    optimizer = method.build_optimizer(named, lambda groups: torch.optim.SGD(groups, lr=0.1))
    data = RegressionData(3)
    path = {name: torch.zeros_like(p) for name, p in named}
    for batch in data.batches(3):
        optimizer.zero_grad()
        data.loss(model, batch).backward()
        for name, p in named:  # plain SGD: the step is -lr * g, so -g * step = lr * g^2
            path[name] += 0.1 * p.grad.square()
        optimizer.step()
    method.end_task(model, TASK, data)
    omega = method.state_dict()["omega"]
    for name, p in named:
        expected = path[name] / ((p.detach() - start[name]).square() + 0.01)
        torch.testing.assert_close(omega[name], expected)
    method.trainable_parameters(model, TASK)
    with torch.no_grad():
        model.bias.add_(0.2)
    torch.testing.assert_close(method.extra_loss(model, None, None), (omega["bias"] * 0.2**2).sum())  # type: ignore[arg-type]


def test_si_counts_negative_importance_as_zero():
    model = nn.Linear(1, 1, bias=False)
    method = SI(SIParams())
    named = method.trainable_parameters(model, TASK)
    optimizer = method.build_optimizer(named, lambda groups: torch.optim.SGD(groups, lr=0.1))
    model.weight.grad = torch.ones_like(model.weight)
    optimizer.param_groups[0]["lr"] = -0.1  # a step up the gradient
    optimizer.step()
    method.end_task(model, TASK, None)  # type: ignore[arg-type]
    assert float(method.state_dict()["omega"]["weight"]) == 0.0


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
