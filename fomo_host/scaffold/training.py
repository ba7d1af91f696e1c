"""Templates of the kinds that shape training: method, optimizer, scheduler, merger, merge operator."""

from __future__ import annotations

from .package import KindTemplate

METHOD = KindTemplate(
    kind="method",
    hook="register_methods",
    register_type="MethodRegister",
    summary="Trains only the biases of each tower's last residual blocks (BitFit, Ben Zaken et al. 2022, at the top).",
    params='''from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Settings of the method (``method.params``)."""

    model_config = ConfigDict(extra="forbid")

    blocks: int = Field(default=1, ge=1, description="how many of each tower's last residual blocks train their biases")
''',
    component='''import re

from torch import nn

from fomo_host.api import FomoError, TaskInfo, UpdateMethod

from .params import Params

NAME = "__NAME__"
BLOCK = re.compile(r"^(?P<tower>.*resblocks)\\.(?P<index>\\d+)\\.")
"""A parameter of a residual block, as open_clip names them: ``visual.transformer.resblocks.11.mlp.c_fc.bias``."""


class LastBlockBiases(UpdateMethod):
    """Trains the bias terms of the last ``blocks`` residual blocks of each tower; every other weight stays frozen.

    The method keeps no state of its own: the engine's checkpoints hold everything a resume needs.
    """

    def __init__(self, params: Params) -> None:
        self.params = params

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        named = list(model.named_parameters())
        last: dict[str, int] = {}
        for name, _ in named:
            block = BLOCK.match(name)
            if block is not None:
                last[block["tower"]] = max(last.get(block["tower"], -1), int(block["index"]))
        chosen = []
        for name, parameter in named:
            block = BLOCK.match(name)
            if block is not None and name.endswith("bias") and int(block["index"]) > last[block["tower"]] - self.params.blocks:
                chosen.append((name, parameter))
        if not chosen:
            raise FomoError(f"method {NAME!r}: the model has no residual blocks with biases (open_clip names: ...resblocks.N...bias)")
        return chosen


def build(params: Params) -> LastBlockBiases:
    return LastBlockBiases(params)
''',
    test='''import re

from fomo_host.testing import MethodConformance

LAYERS = 2
"""Residual blocks per tower of the suite's toy CLIP (open_clip's layout)."""


class Test__CLASS__(MethodConformance):
    method_name = "__NAME__"
    params = {"blocks": 1}
    invalid_params = {"blocks": 0}
    model_params = {"layers": LAYERS}

    def claims_to_train(self, name: str) -> bool:
        block = re.search(r"resblocks\\.(\\d+)\\.", name)
        return block is not None and int(block[1]) >= LAYERS - self.params["blocks"] and name.endswith("bias")
''',
    spec_usage="""```toml
[method]
name = "__NAME__"
params = { blocks = 2 }
```
""",
)

OPTIMIZER = KindTemplate(
    kind="optimizer",
    hook="register_optimizers",
    register_type="OptimizerRegister",
    summary="Stochastic gradient descent with (optionally Nesterov) momentum: torch.optim.SGD over the method's groups.",
    params='''from pydantic import BaseModel, ConfigDict, Field, model_validator


class Params(BaseModel):
    """Settings of the optimizer (``optimizer.params``; ``optimizer.lr`` and ``weight_decay`` are the host's)."""

    model_config = ConfigDict(extra="forbid")

    momentum: float = Field(default=0.9, ge=0, lt=1, description="the momentum factor")
    nesterov: bool = Field(default=False, description="Nesterov momentum (needs a momentum above 0)")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> Params:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov = true needs a momentum above 0")
        return self
''',
    component='''from typing import Any

import torch

from fomo_host.api import OptimizerBuilder, OptimizerContext

from .params import Params


class MomentumSGD(OptimizerBuilder):
    """torch's SGD with momentum over the groups the method chose, each with the weight decay the host gave it.

    The host sets every group's learning rate before each step (``optimizer.lr`` x schedule x the group's
    ``lr_scale``); the momentum buffers are the optimizer's state, which checkpoints keep.
    """

    def __init__(self, params: Params) -> None:
        self.params = params

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            groups,
            lr=context.lr,
            momentum=self.params.momentum,
            nesterov=self.params.nesterov,
            weight_decay=context.weight_decay,
        )


def build(params: Params) -> MomentumSGD:
    return MomentumSGD(params)
''',
    test="""from fomo_host.testing import OptimizerConformance


class Test__CLASS__(OptimizerConformance):
    optimizer_name = "__NAME__"
    optimizer_params = {"momentum": 0.9, "nesterov": True}
    invalid_optimizer_params = {"momentum": 1.5}
    method_name = "conformance-full"  # the suite's own method: trains every weight
    lr = 0.01
""",
    spec_usage="""```toml
[optimizer]
name = "__NAME__"
lr = 0.01
params = { momentum = 0.9, nesterov = true }
```
""",
)

SCHEDULER = KindTemplate(
    kind="scheduler",
    hook="register_schedulers",
    register_type="SchedulerRegister",
    summary="Linear warmup over the first share of each task's steps, then the full learning rate.",
    params='''from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Settings of the schedule (``scheduler.params``)."""

    model_config = ConfigDict(extra="forbid")

    warmup: float = Field(default=0.1, ge=0, lt=1, description="share of each task's steps spent warming up linearly")
''',
    component='''import math

from .params import Params


class Schedule:
    """The learning-rate factor at a step: a pure function of the step, the task's length and the task."""

    needs_horizon = False
    """The factor never depends on the number of tasks: runs with it can be updated with more tasks."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = math.ceil(self.params.warmup * steps_per_task)
        return (step + 1) / warmup if step < warmup else 1.0


def build(params: Params) -> Schedule:
    return Schedule(params)
''',
    test="""from fomo_host.testing import SchedulerConformance


class Test__CLASS__(SchedulerConformance):
    scheduler_name = "__NAME__"
    params = {"warmup": 0.2}
    invalid_params = {"warmup": 1.5}
    max_factor = 1.0
    horizon_free = True
""",
    spec_usage="""```toml
[scheduler]
name = "__NAME__"
params = { warmup = 0.2 }
```
""",
)

MERGER = KindTemplate(
    kind="merger",
    hook="register_mergers",
    register_type="MergerRegister",
    summary="Deploys theta_0 + weight * (theta_t - theta_0) after each task (WiSE-FT's interpolation, Wortsman et al. 2022).",
    params='''from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Settings of the merger (``merger.params``)."""

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(default=0.5, gt=0, le=1, description="share of the fine-tuned weights in the deployed model")
    continue_from: Literal["finetuned", "interpolated"] = Field(default="finetuned", description="the weights the next task trains from")
''',
    component='''import torch

from fomo_host.api import MergeDecision, MergeInputs, Merger, StateDict

from .params import Params


class Interpolation(Merger):
    """After each task: the deployed model is the base weights moved ``weight`` of the way to the fine-tuned ones.

    It keeps no weights of its own (nothing in memory, nothing in the store), so every process of a run decides
    the same from the same inputs, and a resume needs no state.
    """

    def __init__(self, params: Params) -> None:
        self.params = params

    def after_task(self, inputs: MergeInputs) -> MergeDecision:
        interpolated = interpolate(inputs.base, inputs.finetuned, self.params.weight)
        if self.params.continue_from == "interpolated":
            train_from = {key: tensor.clone() for key, tensor in interpolated.items()}
            return MergeDecision(train_from=train_from, deploy=interpolated)
        return MergeDecision(deploy=interpolated)  # training goes on from the fine-tuned model as it is


def interpolate(base: StateDict, finetuned: StateDict, weight: float) -> StateDict:
    """New tensors ``base + weight * (finetuned - base)``; integer buffers as fine-tuned."""
    return {
        key: torch.lerp(tensor, finetuned[key], weight) if tensor.is_floating_point() else finetuned[key].clone()
        for key, tensor in base.items()
    }


def build(params: Params) -> Interpolation:
    return Interpolation(params)
''',
    test="""from fomo_host.testing import MergerConformance


class Test__CLASS__(MergerConformance):
    merger_name = "__NAME__"
    params = {"weight": 0.5, "continue_from": "interpolated"}
    invalid_params = {"weight": 0}
""",
    spec_usage="""```toml
[merger]
name = "__NAME__"
params = { weight = 0.5, continue_from = "interpolated" }
```
""",
)

MERGE_OPERATOR = KindTemplate(
    kind="merge_operator",
    hook="register_merge_operators",
    register_type="MergeOperatorRegister",
    summary="Task arithmetic with per-model weights: theta_0 + scale * sum_i w_i (theta_i - theta_0) (Ilharco et al. 2023).",
    params='''from typing import ClassVar

from pydantic import Field

from fomo_host.api import MergeOperatorParams


class Params(MergeOperatorParams):
    """Settings of the operator (a merger's ``operator = { name = ..., params = ... }``)."""

    takes_weights: ClassVar[bool] = True
    """A schedule's per-model weights are used: w_i above."""

    scale: float = Field(default=1.0, gt=0, description="lambda: how far the weighted task vector moves theta_0")
''',
    component='''from collections.abc import Sequence

import torch

from fomo_host.api import MergeOperator, StateDict

from .params import Params


class WeightedTaskArithmetic(MergeOperator):
    """Adds the weighted mean of the task vectors tau_i = theta_i - theta_0, scaled, to theta_0.

    The models are read one at a time (a merger's history may load each from disk on access), and only one
    float32 sum per tensor is kept, so memory stays flat in the number of models. Integer buffers come from
    the newest model.
    """

    def __init__(self, params: Params) -> None:
        self.params = params

    def __call__(
        self, base: StateDict, models: Sequence[StateDict], weights: Sequence[float] | None, model_ids: Sequence[int]
    ) -> StateDict:
        shares = list(weights) if weights is not None else [1 / len(models)] * len(models)
        sums = {key: torch.zeros_like(tensor, dtype=torch.float32) for key, tensor in base.items() if tensor.is_floating_point()}
        newest: StateDict = {}
        for share, model in zip(shares, models, strict=True):
            for key, tensor in model.items():
                if key in sums:
                    sums[key] += share * (tensor.float() - base[key].float())
                else:
                    newest[key] = tensor
        merged = {}
        for key, tensor in base.items():
            if key in sums:
                merged[key] = (tensor.float() + self.params.scale * sums[key]).to(tensor.dtype)
            else:
                merged[key] = newest.get(key, tensor).clone()
        return merged


def build(params: Params) -> WeightedTaskArithmetic:
    return WeightedTaskArithmetic(params)
''',
    test="""from fomo_host.testing import MergeOperatorConformance


class Test__CLASS__(MergeOperatorConformance):
    operator_name = "__NAME__"
    params = {"scale": 1.0}
    invalid_params = {"scale": 0}
""",
    spec_usage="""A merger that takes an operator names it in its params, e.g. with the first-party `fomo-merging`:

```toml
[merger]
name = "merge-every-task"
params = { operator = { name = "__NAME__", params = { scale = 0.8 } } }
```
""",
)
