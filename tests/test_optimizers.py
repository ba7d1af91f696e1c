"""Optimizers are a component kind: registered, listed, named in a spec, refused when unknown or contested, and a
third party's optimizer trains every method (here Lion, written in this file, with LoRA)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from fomo_host import hookimpl
from fomo_host.api import OptimizerBuilder, OptimizerContext, OptimizerRegister
from fomo_host.components import BuildContext
from fomo_host.engine.budget import resolve_budget
from fomo_host.errors import SpecError
from fomo_host.plugins import load_plugins
from fomo_host.resolve import resolve_component
from fomo_host.spec_loading import build_spec
from fomo_host.testing import OptimizerConformance, run_cli

FIRST_PARTY = {"adamw", "adamw8bit", "galore", "adamw-schedulefree"}


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023): the sign of an interpolated momentum, decoupled weight decay."""

    def __init__(self, params: Any, lr: float, betas: tuple[float, float], weight_decay: float) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                state = self.state[parameter]
                if not state:
                    state["exp_avg"] = torch.zeros_like(parameter)
                momentum = state["exp_avg"]
                parameter.mul_(1 - group["lr"] * group["weight_decay"])
                parameter.add_(momentum.mul(beta1).add(parameter.grad, alpha=1 - beta1).sign_(), alpha=-group["lr"])
                momentum.mul_(beta2).add_(parameter.grad, alpha=1 - beta2)


class LionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    betas: tuple[float, float] = (0.9, 0.99)
    scale_lr: float = Field(default=1.0, gt=0, description="Lion wants a smaller lr than AdamW: this multiplies optimizer.lr")


class LionBuilder(OptimizerBuilder):
    def __init__(self, params: LionParams) -> None:
        self.params = params

    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        for group in groups:
            group["lr_scale"] *= self.params.scale_lr
        return Lion(groups, lr=context.lr * self.params.scale_lr, betas=self.params.betas, weight_decay=context.weight_decay)


class LionPlugin:
    @hookimpl
    def register_optimizers(self, register: OptimizerRegister) -> None:
        register(name="lion", factory=LionBuilder, params=LionParams, description="Lion (Chen et al. 2023).")


class AnotherAdamW:
    @hookimpl
    def register_optimizers(self, register: OptimizerRegister) -> None:
        register(name="adamw", factory=LionBuilder, params=LionParams, description="Not AdamW.")


MINIMAL: dict[str, Any] = {
    "model": {"name": "tiny-clip"},
    "data": {"sources": [{"name": "synthetic"}]},
    "budget": {"steps_per_task": 2},
}


def test_the_first_party_optimizers_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("plugins", "--kind", "optimizer", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    listed = {name for row in rows for name in row["components"].get("optimizer", [])}
    assert listed == FIRST_PARTY
    assert {row["distribution"] for row in rows} == {"fomo-optim"}
    assert run_cli("plugins", "adamw-schedulefree", "--kind", "optimizer") == 0
    assert "optimizer.params" in capsys.readouterr().out


def test_a_spec_names_an_optimizer_and_its_params_are_validated() -> None:
    registry = load_plugins().registry
    spec = build_spec(MINIMAL, ["optimizer.name=galore", "optimizer.params.rank=4"], registry)
    assert spec.optimizer.name == "galore" and spec.optimizer.params == {"rank": 4} and spec.optimizer.lr == 1e-5
    with pytest.raises(SpecError, match=r"^spec: optimizer\.params\.rank: Input should be greater than or equal to 1$"):
        build_spec(MINIMAL, ["optimizer.name=galore", "optimizer.params.rank=0"], registry)
    with pytest.raises(SpecError, match=r"unknown optimizer 'sgd' at spec: optimizer\.name; available: adamw, adamw-schedulefree"):
        build_spec(MINIMAL, ["optimizer.name=sgd"], registry)
    # the moments belong to the optimizer: the section has no betas of its own
    with pytest.raises(SpecError, match=r"optimizer\.betas: unknown key"):
        build_spec(MINIMAL, ["optimizer.betas=[0.9, 0.99]"], registry)


def test_an_unknown_optimizer_in_a_spec_file_is_one_line_and_exit_status_2(tmp_path, capsys) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[model]\nname = "tiny-clip"\n[[data.sources]]\nname = "synthetic"\n[budget]\nsteps_per_task = 2\n[optimizer]\nname = "lamb"\n'
    )
    assert run_cli("validate", str(spec)) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "unknown optimizer 'lamb'" in error


def test_two_plugins_claiming_one_optimizer_name_leave_it_to_neither() -> None:
    host = load_plugins(extra=[("another-adamw", AnotherAdamW())])
    with pytest.raises(SpecError, match=r"optimizer .adamw. at optimizer.name is registered by another-adamw local and by fomo-optim"):
        host.registry.get("optimizer", "adamw", where="optimizer.name")
    assert ("optimizer", "adamw") in host.registry.conflicts()


def test_a_third_party_optimizer_carries_its_provider() -> None:
    component = load_plugins(extra=[("lion-plugin", LionPlugin())]).registry.get("optimizer", "lion")
    assert component.kind == "optimizer" and component.provider.distribution == "lion-plugin"


def test_the_budget_measures_each_optimizer_s_state(tmp_path) -> None:
    """The analytic memory measure counts the optimizer's real state, on the meta device, for every optimizer; the
    multiplier's reference stays full fine-tuning with AdamW."""
    host = load_plugins()
    tables = {
        "adamw": {},
        "adamw-schedulefree": {},
        "adamw8bit": {"min_8bit_size": 4096},
        "galore": {"rank": 8},
    }
    budgets = {}
    for name, params in tables.items():
        spec = build_spec(
            {
                **MINIMAL,
                "run": {"batch_size": 8},
                "optimizer": {"name": name, "params": params},
                "budget": {"maf_per_task": 100.0},
                "data": {**MINIMAL["data"], "num_tasks": 1},
            }
        )
        budgets[name] = resolve_budget(host, spec, tmp_path, torch.device("cpu"))
    model = build_spec(MINIMAL, registry=host.registry)
    bundle = resolve_component(host.registry, "model", model.model, "model").build(BuildContext(seed=0, cache_dir=tmp_path))
    sizes = [p.numel() for p in bundle.model.parameters()]
    adamw = budgets["adamw"]
    assert adamw.memory_multiplier == 1.0 and adamw.peak_memory_bytes == adamw.reference_peak_memory_bytes
    # schedule-free keeps z and the second moment where AdamW keeps two moments (and one step counter per tensor)
    assert abs(budgets["adamw-schedulefree"].peak_memory_bytes - adamw.peak_memory_bytes) <= 4 * len(sizes)
    # 8-bit: the two moments of every tensor of 4,096 elements or more take 1 byte an element instead of 4, less the
    # blockwise scales (one float per 256 elements per moment) and the quantisation maps
    large = [n for n in sizes if n >= 4096]
    saved = adamw.peak_memory_bytes - budgets["adamw8bit"].peak_memory_bytes
    assert 6 * sum(large) - 8 * sum(-(-n // 256) for n in large) - 2 * 256 * 4 * len(large) <= saved <= 6 * sum(large)
    assert budgets["adamw8bit"].memory_multiplier < 1.0
    # GaLore at rank 8: the block matrices' moments live in an 8-wide subspace
    assert budgets["galore"].peak_memory_bytes < adamw.peak_memory_bytes and budgets["galore"].memory_multiplier < 1.0
    # every optimizer runs the same model step: the FLOPs differ only by GaLore's projections
    assert budgets["adamw8bit"].step_gflops == budgets["adamw-schedulefree"].step_gflops == adamw.step_gflops
    assert budgets["galore"].step_gflops > adamw.step_gflops


class TestLionWithLoRA(OptimizerConformance):
    """A third party's optimizer with a method that wraps the model in adapters."""

    optimizer_name = "lion"
    optimizer_params = {"scale_lr": 0.1}
    invalid_optimizer_params = {"scale_lr": 0}
    method_name = "lora"
    params = {"rank": 4}

    def extra_plugins(self) -> list[tuple[str, object]]:
        return [("lion-plugin", LionPlugin())]
